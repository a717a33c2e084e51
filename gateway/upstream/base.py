"""What every upstream module provides, and the errors the retry loop reads.

A request meets its upstream in two steps: ``prepare()`` once per request (the
body in the upstream's own shape, the model name's thinking level applied,
serialised), then ``call()`` once per credential tried (the credential's own
headers added), so a retry on the next credential redoes none of the work.

    UpstreamError                    (status, message, headers, body)
     ├── UpstreamUnavailableError    network, timeout, 5xx, overloaded: cool down briefly, try the next credential
     ├── UpstreamRateLimitedError    429 / usage window exhausted: cool down until the reset, try the next credential
     ├── UpstreamAuthError           401: refresh the token once and retry; after that, the credential needs re-login
     ├── CredentialUnusableError     the account cannot serve this at all (plan, scope): disable it, try the next
     └── UpstreamRejectedError       a 4xx about the request itself: pass it back to the client, no retry
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from gateway.formats.sse import Event

Json = dict[str, Any]  # a JSON object as it crosses the wire


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


class Account(Protocol):
    """What an upstream reads of a credential (credentials.models.Credential)."""

    pk: int
    account_id: str
    access_token: str


@dataclass(slots=True)
class Prepared:
    """One request made ready for its upstream, shared by every credential it is tried on."""

    url: str
    headers: dict[str, str]  # all but the credential's own, which call() puts first
    body: Json
    data: bytes  # ``body`` serialised; b"" when call() adds a credential's part to the body (Claude's user id)
    stream: bool  # the upstream answers an event stream
    session_seed: str  # stable per client (its key's prefix): seeds the ids an upstream wants per session


@dataclass(slots=True)
class UpstreamCall:
    """One HTTP request to send upstream."""

    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool


class Upstream(Protocol):
    """One provider's upstream (gateway/upstream/<provider>.py); registry.UPSTREAMS holds one of each."""

    provider: str
    upstream_format: str  # the wire format of its bodies and streams: "anthropic" or "responses"
    counts_tokens: bool  # it has a count_tokens endpoint (else the gateway estimates)
    compacts: bool  # it has Codex's remote compaction endpoint (else the gateway refuses it)

    def prepare(self, body: Json, *, endpoint: str, client_headers: Mapping[str, str], thinking: str,
                adaptive: bool, session_seed: str) -> Prepared:
        """``body`` (already in ``upstream_format``) as this upstream wants it for the client's ``endpoint``,
        with the model name's ``thinking`` level applied. Raises TranslationError for a body it cannot send."""
        ...

    def call(self, credential: Account, prepared: Prepared) -> UpstreamCall:
        """The HTTP request for ``prepared`` on ``credential``."""
        ...

    def windows(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """The subscription windows an answer's headers report (ratelimits.py)."""
        ...

    def stream_start(self, event: Event) -> bool:
        """Vet a stream's opening event: False to read on, True to commit to the stream.
        Raises the UpstreamError to fail over on (an account-level failure reported after the 200)."""
        ...

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """The error the retry loop acts on, for a non-2xx answer."""
        ...


def json_or_none(raw: bytes) -> Any:
    """An upstream body parsed as JSON, or None when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
