"""What every upstream module provides, and the errors the retry loop reads.

    UpstreamError                    (status, message, headers, body)
     ├── UpstreamUnavailableError    network, timeout, 5xx, overloaded: cool down briefly, try the next credential
     ├── UpstreamRateLimitedError    429 / usage window exhausted: cool down until the reset, try the next credential
     ├── UpstreamAuthError           401: refresh the token once and retry; after that, the credential needs re-login
     ├── CredentialUnusableError     the account cannot serve this at all (plan, scope): disable it, try the next
     └── UpstreamRejectedError       a 4xx about the request itself: pass it back to the client, no retry
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


class UpstreamUnavailableError(UpstreamError):
    retryable = True


class UpstreamRateLimitedError(UpstreamError):
    retryable = True


class UpstreamAuthError(UpstreamError):
    retryable = True


class CredentialUnusableError(UpstreamError):
    retryable = True


class UpstreamRejectedError(UpstreamError):
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
