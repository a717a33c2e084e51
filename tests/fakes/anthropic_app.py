"""The fake Anthropic API as Claude Code OAuth tokens see it (PROTOCOLS.md §1, §4.6, §4.7).

Routes (the query string, e.g. ``?beta=true``, is ignored as upstream does):
    POST /v1/messages               JSON, or SSE when ``stream`` is true
    POST /v1/messages/count_tokens  {"input_tokens": N}
    GET  /v1/models                 the Anthropic list shape
    GET  /api/oauth/profile         the token's account, organisation and plan (§4.4)
    GET  /api/oauth/usage           the account's subscription windows (§4.8), recorded as "claude_usage"

Order of checks, as upstream: auth headers, then the token, then the body,
then any scripted fault for this token.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from . import anthropic_rules as rules
from . import anthropic_wire as wire
from .faults import Fault
from .prompt_cache import CacheUsage
from .replies import anthropic_input_tokens, anthropic_reply, anthropic_usage
from .serving import Incoming, SseStream, json_response, receive
from .tokens import stable_uuid

PROVIDER = "claude"
USAGE = "claude_usage"  # the usage endpoint's recorder and fault name
EXPIRED_MESSAGE = "OAuth token has expired. Please obtain a new token or refresh your existing token."
RATE_LIMITED_MESSAGE = "This request would exceed your account's rate limit. Please try again later."
STATUS_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
MODELS = (
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
)
STREAM_CUT_AFTER = 4  # message_start, content_block_start, ping, one delta


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/api/oauth/profile", profile)
    app.router.add_get("/api/oauth/usage", usage)
    return app


# --- responses ---------------------------------------------------------------


def _error(
    incoming: Incoming, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return _reject(incoming, (status, wire.error_body(error_type, message)), headers)


def _reject(incoming: Incoming, rejection: rules.Rejection, headers: dict[str, str] | None = None) -> web.Response:
    status, body = rejection
    all_headers = {"request-id": body.get("request_id") or wire.new_id("req_011C"), **(headers or {})}
    incoming.world.recorder.count(f"{PROVIDER}.rejected.{status}")
    return json_response(incoming, status, body, all_headers)


def _ok_headers(incoming: Incoming) -> dict[str, str]:
    """Subscription rate-limit headers that OAuth responses carry on success (§4.7), for the caller's account."""
    grant = incoming.world.tokens.valid_access(rules.bearer_token(incoming.request.headers))
    quota = incoming.world.quota(PROVIDER, grant.identity.account_id if grant else None)
    five_reset, week_reset = quota.resets(time.time())
    return {
        "request-id": wire.new_id("req_011C"),
        "anthropic-ratelimit-unified-status": "allowed",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-status": "allowed",
        "anthropic-ratelimit-unified-5h-utilization": f"{quota.five_hour:.2f}",
        "anthropic-ratelimit-unified-5h-reset": str(five_reset),
        "anthropic-ratelimit-unified-7d-status": "allowed",
        "anthropic-ratelimit-unified-7d-utilization": f"{quota.seven_day:.2f}",
        "anthropic-ratelimit-unified-7d-reset": str(week_reset),
        "anthropic-ratelimit-unified-reset": str(five_reset),
    }


def _authenticate(incoming: Incoming) -> web.Response | None:
    """Header shape first, then the token must be live and issued by the fake."""
    rejected = rules.validate_headers(incoming.request.headers)
    if rejected is not None:
        return _reject(incoming, rejected)
    token = rules.bearer_token(incoming.request.headers)
    if incoming.world.tokens.valid_access(token) is None:
        return _error(incoming, 401, "authentication_error", EXPIRED_MESSAGE)
    if incoming.json_error:
        return _error(incoming, 400, "invalid_request_error", "There was an error parsing the body of your request")
    return None


# --- handlers ----------------------------------------------------------------


async def messages(request: web.Request) -> web.StreamResponse:
    incoming = await receive(request, PROVIDER)
    refused = _authenticate(incoming)
    if refused is not None:
        return refused
    rejected = rules.validate_messages_body(incoming.body)
    if rejected is not None:
        return _reject(incoming, rejected)
    fault = incoming.world.faults.take(PROVIDER, rules.bearer_token(request.headers))
    if fault is not None:
        incoming.world.recorder.count(f"{PROVIDER}.fault.{fault.kind}")
        refused = _refusal_for(incoming, fault)
        if refused is not None:
            return refused
    if incoming.body.get("stream"):
        return await _stream(incoming, fault)
    return await _reply_json(incoming, fault)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    incoming = await receive(request, PROVIDER)
    refused = _authenticate(incoming)
    if refused is not None:
        return refused
    rejected = rules.validate_count_tokens_body(incoming.body)
    if rejected is not None:
        return _reject(incoming, rejected)
    body = {"input_tokens": anthropic_input_tokens(incoming.body)}
    return json_response(incoming, 200, body, _ok_headers(incoming))


async def models(request: web.Request) -> web.StreamResponse:
    incoming = await receive(request, PROVIDER)
    refused = _authenticate(incoming)
    if refused is not None:
        return refused
    data = [{"type": "model", "id": i, "display_name": n, "created_at": c} for i, n, c in MODELS]
    body = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
    return json_response(incoming, 200, body, _ok_headers(incoming))


async def profile(request: web.Request) -> web.StreamResponse:
    """Who the token belongs to; the plan shows as account flags and the organisation type."""
    incoming = await receive(request, PROVIDER)
    grant = incoming.world.tokens.valid_access(rules.bearer_token(request.headers))
    if grant is None or grant.identity.provider != PROVIDER:
        return _error(incoming, 401, "authentication_error", EXPIRED_MESSAGE)
    identity = grant.identity
    body = {
        "account": {
            "uuid": identity.account_id, "email": identity.email, "display_name": identity.email.split("@")[0],
            "has_claude_max": identity.plan == "max", "has_claude_pro": identity.plan == "pro",
        },
        "organization": {
            "uuid": stable_uuid("org", identity.email), "name": "Fake Org",
            "organization_type": f"claude_{identity.plan}",
        },
    }
    return json_response(incoming, 200, body, {"request-id": wire.new_id("req_011C")})


async def usage(request: web.Request) -> web.StreamResponse:
    """The account's windows as ``GET /api/oauth/usage`` shows them (§4.8): percents, ISO reset times.

    Auth as upstream: an OAuth bearer token with the oauth beta (no
    ``anthropic-version`` needed), live, of a Claude account.  Faults are
    scripted under "claude_usage", so a poll never eats a fault meant for a message.
    """
    incoming = await receive(request, USAGE)
    token = rules.bearer_token(request.headers)
    if not rules.is_oauth_token(token):
        return _error(incoming, 401, "authentication_error", "Invalid bearer token")
    if rules.OAUTH_BETA not in rules.beta_flags(request.headers):
        return _error(incoming, 401, "authentication_error", rules.OAUTH_NOT_SUPPORTED)
    grant = incoming.world.tokens.valid_access(token)
    if grant is None or grant.identity.provider != PROVIDER:
        return _error(incoming, 401, "authentication_error", EXPIRED_MESSAGE)
    fault = incoming.world.faults.take(USAGE, token)
    if fault is not None:
        incoming.world.recorder.count(f"{USAGE}.fault.{fault.kind}")
        refused = await _usage_refusal(incoming, fault)
        if refused is not None:
            return refused
    quota = incoming.world.quota(PROVIDER, grant.identity.account_id)
    five_reset, week_reset = quota.resets(time.time())
    week = {"utilization": round(quota.seven_day * 100, 1), "resets_at": _iso(week_reset)}
    body: dict[str, Any] = {
        "five_hour": {"utilization": round(quota.five_hour * 100, 1), "resets_at": _iso(five_reset)},
        "seven_day": week,
        "seven_day_opus": None,  # upstream sends null for a window the account has not started
    }
    limits = [
        {"kind": "session", "percent": body["five_hour"]["utilization"], "severity": "normal", "resets_at": five_reset},
        {"kind": "weekly_all", "percent": week["utilization"], "severity": "normal", "resets_at": week_reset},
    ]
    for model, used in quota.scoped:
        body[f"seven_day_{model}"] = {"utilization": round(used * 100, 1), "resets_at": _iso(week_reset)}
        limits.append({"kind": "weekly_scoped", "percent": round(used * 100, 1), "severity": "normal",
                       "resets_at": week_reset, "scope": {"model": {"display_name": model.capitalize()}}})
    body["limits"] = limits
    return json_response(incoming, 200, body, {"request-id": wire.new_id("req_011C")})


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=timezone.utc).isoformat()


async def _usage_refusal(incoming: Incoming, fault: Fault) -> web.StreamResponse | None:
    if fault.kind == "slow":
        await asyncio.sleep(float(fault.opts.get("delay", 0.2)))
        return None
    if fault.kind == "not_json":
        incoming.record_status(200)
        return web.Response(status=200, text="<html>Just a moment...</html>", content_type="text/html")
    return _refusal_for(incoming, fault)


# --- faults ------------------------------------------------------------------


def _refusal_for(incoming: Incoming, fault: Fault) -> web.Response | None:
    """The HTTP error a fault answers with, or None for in-stream faults."""
    opts = fault.opts
    if fault.kind == "expired":
        return _error(incoming, 401, "authentication_error", EXPIRED_MESSAGE)
    if fault.kind == "rate_limited":
        return _error(incoming, 429, "rate_limit_error", RATE_LIMITED_MESSAGE, _rate_limit_headers(opts))
    if fault.kind == "overloaded":
        headers = {"retry-after": str(opts["retry_after"])} if "retry_after" in opts else None
        return _error(incoming, 529, "overloaded_error", "Overloaded", headers)
    if fault.kind == "server_error":
        return _error(incoming, 500, "api_error", "Internal server error")
    if fault.kind == "http_error":
        status = int(opts.get("status", 500))
        body = opts.get("body") or wire.error_body(STATUS_ERROR_TYPES.get(status, "api_error"), "Scripted error")
        return _reject(incoming, (status, body), opts.get("headers"))
    return None


def _rate_limit_headers(opts: dict[str, Any]) -> dict[str, str]:
    headers = {"retry-after": str(opts.get("retry_after", 30))}
    if "unified_reset" in opts:
        # Credential-scoped: the subscription window is exhausted (§4.7).
        reset = str(int(opts["unified_reset"]))
        headers |= {
            "anthropic-ratelimit-unified-status": "rejected",
            "anthropic-ratelimit-unified-reset": reset,
            "anthropic-ratelimit-unified-5h-status": "rejected",
            "anthropic-ratelimit-unified-5h-reset": reset,
            "anthropic-ratelimit-unified-representative-claim": "five_hour",
        }
    return headers


async def _reply_json(incoming: Incoming, fault: Fault | None) -> web.StreamResponse:
    body = incoming.body
    if fault is not None and fault.kind == "slow":
        await asyncio.sleep(float(fault.opts.get("delay", 0.2)))
    if fault is not None and fault.kind == "drop_mid_stream":
        return _drop_before_response(incoming)
    if fault is not None and fault.kind == "mid_stream_error":
        # A non-streaming caller cannot get an error event; upstream answers 529.
        return _error(incoming, 529, "overloaded_error", "Overloaded")
    reply = anthropic_reply(body)
    usage = anthropic_usage(body, reply, _cache_split(incoming))
    payload = wire.message_json(reply, message_id=wire.new_id("msg_01"), model=body["model"], usage=usage)
    incoming.world.recorder.set_usage(PROVIDER, usage)
    return json_response(incoming, 200, payload, _ok_headers(incoming))


def _cache_split(incoming: Incoming) -> CacheUsage:
    """How the prompt splits into cache reads, writes and the rest, for this token's account."""
    grant = incoming.world.tokens.valid_access(rules.bearer_token(incoming.request.headers))
    account = grant.identity.account_id if grant else ""
    return incoming.world.prompt_cache.account(incoming.body, account)


def _drop_before_response(incoming: Incoming) -> web.StreamResponse:
    transport = incoming.request.transport
    if transport is not None:
        transport.abort()
    incoming.record_status(0)
    return web.Response(status=500)  # never reaches the client: the socket is gone


async def _stream(incoming: Incoming, fault: Fault | None) -> web.StreamResponse:
    body = incoming.body
    reply = anthropic_reply(body)
    usage = anthropic_usage(body, reply, _cache_split(incoming))
    events = wire.stream_events(reply, message_id=wire.new_id("msg_01"), model=body["model"], usage=usage)
    kind = fault.kind if fault else None
    opts = fault.opts if fault else {}
    delay = float(opts.get("delay", 0.2)) if kind == "slow" else 0.0
    cut = int(opts.get("after", STREAM_CUT_AFTER))
    if kind == "slow" and opts.get("initial_delay"):
        await asyncio.sleep(float(opts["initial_delay"]))  # silence before the headers
    headers = _ok_headers(incoming)
    async with SseStream(incoming, headers, delay=delay) as stream:
        if kind == "mid_stream_error":
            error = {"type": opts.get("error_type", "overloaded_error"), "message": opts.get("message", "Overloaded")}
            await stream.send_all([*events[:cut], {"type": "error", "error": error}])
        elif kind == "drop_mid_stream":
            await stream.send_all(events[:cut])
            stream.drop()
            return stream.response
        else:
            await stream.send_all(events[:-1])  # through message_delta, which reports usage
            incoming.world.recorder.set_usage(PROVIDER, usage)
            await stream.send(events[-1])
        stream.finished = True
    if not stream.client_gone:
        await stream.response.write_eof()
    return stream.response
