"""What every upstream module provides, and the errors the retry loop reads.

    UpstreamError                  (status, message, headers, body)
     ├── UpstreamUnavailable       network, timeout, 5xx, overloaded: cool down briefly, try the next credential
     ├── UpstreamRateLimited       429 / usage window exhausted: cool down until the reset, try the next credential
     ├── UpstreamAuthFailed        401: refresh the token once and retry; after that, the credential needs re-login
     ├── CredentialUnusable        the account cannot serve this at all (plan, scope): disable it, try the next
     └── UpstreamRejected          a 4xx about the request itself: pass it back to the client, no retry
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping


class UpstreamError(Exception):
    retryable = False

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None,
                 body: Any = None, cooldown: float | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.body = body
        self.cooldown = cooldown
        self.error_type = error_type


class UpstreamUnavailable(UpstreamError):
    retryable = True


class UpstreamRateLimited(UpstreamError):
    retryable = True


class UpstreamAuthFailed(UpstreamError):
    retryable = True


class CredentialUnusable(UpstreamError):
    retryable = True


class UpstreamRejected(UpstreamError):
    retryable = False


@dataclass
class UpstreamCall:
    """One HTTP request to send upstream."""

    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool
    extra: dict[str, Any] = field(default_factory=dict)


def json_or_none(raw: bytes) -> Any:
    """An upstream body parsed as JSON, or None when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
