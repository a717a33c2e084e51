"""Upstream B: the ChatGPT Codex backend through an OpenAI OAuth token (PROTOCOLS.md §5.5-§5.8)."""
from __future__ import annotations

import hashlib
import re
import time
import uuid
from functools import lru_cache
from typing import Any, Mapping

from django.conf import settings

from gateway import fastjson
from gateway.formats.errors import upstream_error_message
from gateway.formats.sse import Event
from gateway.translate import model_suffix
from gateway.upstream import codex_body
from gateway.upstream.base import (
    Account, CredentialUnusableError, Json, Prepared, UpstreamAuthError, UpstreamCall, UpstreamError,
    UpstreamRateLimitedError, UpstreamRejectedError, UpstreamUnavailableError, json_or_none,
)
from gateway.upstream.ratelimits import codex_windows, retry_after_seconds


class Codex:
    provider = "codex"
    upstream_format = "responses"
    counts_tokens = False
    compacts = True

    def prepare(self, body: Json, *, endpoint: str, client_headers: Mapping[str, str], thinking: str,
                adaptive: bool, session_seed: str) -> Prepared:
        """``body`` (a Responses body) under the backend's body rules (codex_body); ``endpoint``
        "compact" targets ``/responses/compact``, which answers JSON. Raises TranslationError."""
        body = codex_body.prepare_compact(body) if endpoint == "compact" else codex_body.prepare(body)
        body = model_suffix.apply(body, thinking, upstream_format=self.upstream_format, adaptive=adaptive)
        session = (client_headers.get("session_id") or client_headers.get("session-id")
                   or body.get("prompt_cache_key") or _session_uuid(session_seed))
        if not body.get("prompt_cache_key"):
            # The backend caches prompts per key; without one, every request is a cold start.
            body = {**body, "prompt_cache_key": str(session)}
        headers = {
            "content-type": "application/json",
            "accept": "application/json" if endpoint == "compact" else "text/event-stream",
            "originator": client_headers.get("originator") or settings.PROXYHUB_CODEX_ORIGINATOR,
            "user-agent": settings.PROXYHUB_CODEX_USER_AGENT,
            "version": settings.PROXYHUB_CODEX_VERSION,
            "session_id": str(session),
            "openai-beta": "responses=experimental",
        }
        path = "/responses/compact" if endpoint == "compact" else "/responses"
        return Prepared(settings.PROXYHUB_CODEX_BASE_URL.rstrip("/") + path, headers, body, fastjson.dumps(body),
                        endpoint != "compact", session_seed)

    def call(self, credential: Account, prepared: Prepared) -> UpstreamCall:
        headers = {"authorization": f"Bearer {credential.access_token}", "chatgpt-account-id": credential.account_id,
                   **prepared.headers}
        return UpstreamCall(prepared.url, headers, prepared.data, prepared.stream)

    def windows(self, headers: Mapping[str, str]) -> dict[str, Any]:
        return codex_windows(headers)

    def stream_start(self, event: Event) -> bool:
        """Vet a stream's opening: False to read on, True to commit; raises the error to fail over on."""
        if event.event in ("response.created", "response.in_progress"):
            return False
        if event.event not in ("response.failed", "error"):
            return True
        data = event.object() or {}
        error = (data.get("response") or {}).get("error") or data
        code, message = str(error.get("code") or ""), str(error.get("message") or "upstream error")
        if code == "usage_not_included":
            raise CredentialUnusableError(403, message, error_type=code)
        if code in ("rate_limit_exceeded", "usage_limit_reached", "insufficient_quota"):
            raise UpstreamRateLimitedError(429, message, cooldown=_stream_cooldown(code, message), error_type=code)
        if code == "server_error":
            raise UpstreamUnavailableError(502, message, cooldown=settings.PROXYHUB_COOLDOWN_OVERLOADED, error_type=code)
        return True  # context_length_exceeded and the like: the client's to see

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        body = json_or_none(raw)
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {}
        error_type = str(err.get("type") or err.get("code") or "")
        message = upstream_error_message(body, f"upstream returned HTTP {status}")
        kwargs = {"headers": headers, "body": body, "error_type": error_type or None}
        if error_type == "usage_not_included":
            return CredentialUnusableError(status, message, **kwargs)
        if status == 401:
            return UpstreamAuthError(status, message, **kwargs)
        if status == 429 or error_type == "usage_limit_reached":
            return UpstreamRateLimitedError(status, message, cooldown=_usage_cooldown(err, headers), **kwargs)
        if status >= 500:
            return UpstreamUnavailableError(status, message, cooldown=settings.PROXYHUB_COOLDOWN_OVERLOADED, **kwargs)
        return UpstreamRejectedError(status, message, **kwargs)


def _usage_cooldown(err: Mapping[str, Any], headers: Mapping[str, str]) -> float:
    if err.get("resets_at"):
        return max(float(err["resets_at"]) - time.time(), 1.0) + 2
    if err.get("resets_in_seconds"):
        return float(err["resets_in_seconds"]) + 2
    retry = retry_after_seconds(headers)
    return retry if retry is not None else float(settings.PROXYHUB_COOLDOWN_THROTTLE)


def _stream_cooldown(code: str, message: str) -> float:
    """``rate_limit_exceeded`` says "try again in 1.5s"; a spent quota waits the long cooldown."""
    match = re.search(r"try again in ([0-9.]+)\s*(ms|s)", message)
    if match:
        seconds = float(match[1]) / (1000 if match[2] == "ms" else 1)
        return max(seconds, 1.0)
    return float(settings.PROXYHUB_COOLDOWN_THROTTLE if code == "rate_limit_exceeded"
                 else settings.PROXYHUB_COOLDOWN_OVERLOADED)


@lru_cache(maxsize=4096)
def _session_uuid(seed: str) -> str:
    return str(uuid.UUID(hashlib.sha256(f"codex-session:{seed}".encode()).hexdigest()[:32]))

