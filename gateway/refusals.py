"""Requests the gateway will not serve, and the one way each refusal reaches the client.

    RefusalError                 status, message, error_type, param, headers, outcome
     └── limits.LimitExceededError   a key's limit: 429 with retry-after

Raised on the /v1 path before the answer's first byte: by the request steps
(gateway.admission: the key, the model), by the key's limits, or by the relay
(the body cannot be translated, no account is ready, the upstream refused).
The handlers catch it, write its usage row (write_row) and answer with send()
over HTTP or frame() over the WebSocket: both build the same body (body()).

``error_type`` is the OpenAI ``code`` (``model_not_found``, ``rate_limit_exceeded``,
an upstream's own code); an Anthropic client sees it as its ``type`` only when it
is one of Anthropic's types, else the type its status stands for.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from gateway.formats.errors import ANTHROPIC_TYPES, error_body
from gateway.http import Send, send_json
from gateway.usage.rows import Outcome, UsageRow
from gateway.usage.writer import record_usage

ANTHROPIC_ERROR_TYPES = frozenset(ANTHROPIC_TYPES.values())
# The headers of a refusal worth handing on inside a WebSocket error frame (Codex reads retry-after on 429).
FRAME_HEADERS = ("retry-after", "x-request-id", "anthropic-ratelimit-unified-status")


class RefusalError(Exception):
    """The request is not served: what the client is told, and the outcome its usage row records."""

    def __init__(self, status: int, message: str, *, error_type: str | None = None, param: str | None = None,
                 headers: Mapping[str, str] | None = None, outcome: str = Outcome.REJECTED) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.headers = dict(headers or {})
        self.outcome = outcome


def body(refusal: RefusalError, client_format: str) -> dict[str, Any]:
    """The error body in the client's format."""
    if client_format == "anthropic":
        known = refusal.error_type if refusal.error_type in ANTHROPIC_ERROR_TYPES else None
        return error_body(client_format, refusal.status, refusal.message, error_type=known)
    return error_body(client_format, refusal.status, refusal.message, code=refusal.error_type, param=refusal.param)


async def send(send: Send, client_format: str, refusal: RefusalError) -> None:
    """Answer over HTTP: the refusal's status and headers, its body in the client's format."""
    await send_json(send, refusal.status, body(refusal, client_format), headers=refusal.headers)


def frame(refusal: RefusalError, request_id: str = "") -> dict[str, Any]:
    """The WebSocket error frame Codex handles like the HTTP answer send() gives (PROTOCOLS.md §3.7);
    ``request_id`` goes into its headers as x-request-id, as on that answer."""
    headers = {k: v for k, v in refusal.headers.items() if k in FRAME_HEADERS}
    if request_id:
        headers["x-request-id"] = request_id
    return {"type": "error", "status": refusal.status, "error": body(refusal, "responses")["error"],
            "headers": headers}


def mark_row(row: UsageRow, refusal: RefusalError) -> None:
    """Put the refusal's status, error type and outcome on the request's usage row."""
    row.status_code = refusal.status
    row.error_type = (refusal.error_type or "")[:64]
    row.outcome = refusal.outcome


def write_row(row: UsageRow, refusal: RefusalError, started: float) -> None:
    """Hand the refused request's usage row to the writer (before its answer goes out)."""
    mark_row(row, refusal)
    row.duration_ms = int((time.monotonic() - started) * 1000)
    record_usage(row)
