"""Upstream A: Claude through a Claude Code OAuth token (PROTOCOLS.md §4.6, §4.7)."""
from __future__ import annotations

import time
from typing import Any, Mapping

from django.conf import settings

from gateway import fastjson
from gateway.formats.errors import upstream_error_message
from gateway.formats.sse import Event
from gateway.translate import model_suffix
from gateway.upstream import claude_body
from gateway.upstream.base import (
    Account, CredentialUnusableError, Json, Prepared, UpstreamAuthError, UpstreamCall, UpstreamError,
    UpstreamRateLimitedError, UpstreamRejectedError, UpstreamUnavailableError, json_or_none,
)
from gateway.upstream.ratelimits import claude_rejected_until, claude_windows, retry_after_seconds

COUNT_TOKENS_BETAS = ("claude-code-20250219", "oauth-2025-04-20", "interleaved-thinking-2025-05-14",
                      "token-counting-2024-11-01")
_PER_CREDENTIAL = ""  # the metadata.user_id claude_body.prepare() is given; call() puts the credential's in its place


class Claude:
    provider = "claude"
    upstream_format = "anthropic"
    counts_tokens = True
    compacts = False

    def prepare(self, body: Json, *, endpoint: str, client_headers: Mapping[str, str], thinking: str,
                adaptive: bool, session_seed: str) -> Prepared:
        """``body`` (in Anthropic format) made Claude-Code-shaped, unless Claude Code itself sent it."""
        passthrough = claude_body.is_claude_code(client_headers, body)
        per_credential = False
        if endpoint == "count_tokens":
            path, betas = "/v1/messages/count_tokens?beta=true", COUNT_TOKENS_BETAS
            body = body if passthrough else claude_body.with_identity(body)
        else:
            path, betas = "/v1/messages?beta=true", settings.PROXYHUB_CLAUDE_BETAS
            body = model_suffix.apply(body, thinking, upstream_format=self.upstream_format, adaptive=adaptive)
            body = claude_body.prepare(body, passthrough=passthrough, user_id=_PER_CREDENTIAL)
            # The user id names the account the request goes out on: call() fills it in for each.
            per_credential = not passthrough and (body.get("metadata") or {}).get("user_id") == _PER_CREDENTIAL
        stream = bool(body.get("stream"))
        client_betas = client_headers.get("anthropic-beta")
        headers = {
            "anthropic-version": client_headers.get("anthropic-version") or "2023-06-01",
            "anthropic-beta": (claude_body.merge_betas(client_betas, [claude_body.OAUTH_BETA]) if passthrough
                               else claude_body.merge_betas(client_betas, betas)),
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "user-agent": client_headers.get("user-agent", "") if passthrough else settings.PROXYHUB_CLAUDE_USER_AGENT,
            "x-app": "cli",
            "anthropic-dangerous-direct-browser-access": "true",
        }
        data = b"" if per_credential else fastjson.dumps(body)
        return Prepared(settings.PROXYHUB_CLAUDE_BASE_URL.rstrip("/") + path, headers, body, data, stream, session_seed)

    def call(self, credential: Account, prepared: Prepared) -> UpstreamCall:
        data = prepared.data
        if not data:
            # prepare() left a metadata dict of our own (claude_body.prepare copies it to add the id): each call
            # writes its account's id there and serialises at once, so no copy of the body is made per call.
            prepared.body["metadata"]["user_id"] = claude_body.stable_user_id(
                str(credential.pk), credential.account_id, prepared.session_seed)
            data = fastjson.dumps(prepared.body)
        headers = {"authorization": f"Bearer {credential.access_token}", **prepared.headers}
        return UpstreamCall(prepared.url, headers, data, prepared.stream)

    def windows(self, headers: Mapping[str, str]) -> dict[str, Any]:
        return claude_windows(headers)

    def stream_start(self, event: Event) -> bool:
        """Vet a stream's opening: False to read on, True to commit; raises the error to fail over on."""
        if event.event in ("message_start", "ping"):
            return False
        if event.event != "error":
            return True
        error = (event.object() or {}).get("error") or {}
        error_type, message = error.get("type"), str(error.get("message") or "upstream error")
        if error_type == "rate_limit_error":
            raise UpstreamRateLimitedError(429, message, cooldown=settings.PROXYHUB_COOLDOWN_THROTTLE, error_type=error_type)
        if error_type in ("overloaded_error", "api_error"):
            raise UpstreamUnavailableError(529, message, cooldown=settings.PROXYHUB_COOLDOWN_OVERLOADED, error_type=error_type)
        return True  # about the request itself: the client sees it in its stream

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """Turn a non-2xx answer into the error the retry loop acts on."""
        body = json_or_none(raw)
        err = (body or {}).get("error") if isinstance(body, dict) else None
        error_type = err.get("type") if isinstance(err, dict) else None
        message = upstream_error_message(body, f"upstream returned HTTP {status}")
        kwargs = {"headers": headers, "body": body, "error_type": error_type}
        if status == 401:
            return UpstreamAuthError(status, message, **kwargs)
        if status == 403 and error_type == "permission_error":
            return CredentialUnusableError(status, message, **kwargs)
        if status == 429:
            until = claude_rejected_until(headers)
            if until is not None:
                return UpstreamRateLimitedError(status, message, cooldown=max(until - time.time(), 1.0) + 2, **kwargs)
            retry = retry_after_seconds(headers)
            cooldown = retry if retry is not None else settings.PROXYHUB_COOLDOWN_THROTTLE
            return UpstreamRateLimitedError(status, message, cooldown=cooldown, **kwargs)
        if status == 529 or status >= 500:
            return UpstreamUnavailableError(status, message, cooldown=settings.PROXYHUB_COOLDOWN_OVERLOADED, **kwargs)
        return UpstreamRejectedError(status, message, **kwargs)

