"""The fake ChatGPT Codex backend (PROTOCOLS.md §3.5, §5.5-§5.8).

Routes: ``POST /backend-api/codex/responses`` (the gateway's base URL is
``<root>/backend-api/codex``), which only streams, and ``POST
/backend-api/codex/responses/compact`` (remote compaction), which answers JSON.  Checks, in order: header
shape, a live token whose account matches ``ChatGPT-Account-ID``, the body,
then any scripted fault.  Every answer, success or 429, carries the
``x-codex-*`` usage headers.  ``GET /backend-api/wham/usage`` answers the
account's windows (§5.10), recorded and scripted as "codex_usage".
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import codex_rules as rules
from . import codex_wire as wire
from .faults import Fault
from .replies import Reply, codex_reply, codex_usage, request_seed, stable_id
from .serving import Incoming, Quota, SseStream, json_response, receive
from .signing import issue_compaction
from .tokens import AccessGrant

PROVIDER = "codex"
USAGE = "codex_usage"  # the usage endpoint's recorder and fault name
TOKEN_EXPIRED = {
    "error": {
        "message": "Provided authentication token is expired. Please try signing in again.",
        "type": None,
        "param": None,
        "code": "token_expired",
    }
}
SERVER_ERROR = {
    "error": {"message": "An error occurred while processing your request.", "type": "server_error", "code": None}
}
PRIMARY_WINDOW, SECONDARY_WINDOW = 300, 10080  # minutes: 5 hours, 7 days
STREAM_CUT_AFTER = 4  # created, in_progress, output_item.added, one more
FAILED_MESSAGES = {
    "rate_limit_exceeded": "Rate limit reached for gpt-5 on tokens per min. Please try again in 1.5s.",
    "context_length_exceeded": "Your input exceeds the context window of this model.",
    "insufficient_quota": "You exceeded your current quota.",
    "usage_not_included": "Your plan does not include Codex.",
}


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/backend-api/codex/responses", responses)
    app.router.add_post("/backend-api/codex/responses/compact", compact)
    app.router.add_get("/backend-api/wham/usage", usage)
    return app


def _usage_headers(incoming: Incoming, plan: str, *, exhausted: bool = False) -> dict[str, str]:
    """The caller's account's windows as ``x-codex-*`` headers (a weekly-only plan has no secondary)."""
    quota = incoming.world.quota(PROVIDER, rules.account_id(incoming.request.headers))
    now = int(time.time())
    windows = _windows(quota, now)
    headers = {"x-request-id": "req_" + secrets.token_hex(12), "x-codex-plan-type": plan}
    for name, (used, minutes, reset) in zip(("primary", "secondary"), windows):
        used = 100.0 if exhausted and name == "primary" else used
        headers |= {
            f"x-codex-{name}-used-percent": f"{used:g}",
            f"x-codex-{name}-window-minutes": str(minutes),
            f"x-codex-{name}-reset-after-seconds": str(reset - now),
            f"x-codex-{name}-reset-at": str(reset),
        }
    return headers


def _windows(quota: Quota, now: float) -> list[tuple[float, int, int]]:
    """(used percent, window minutes, reset unix) of the primary and, if any, the secondary window."""
    five_reset, week_reset = quota.resets(now)
    weekly = (round(quota.seven_day * 100, 1), SECONDARY_WINDOW, week_reset)
    if quota.weekly_only:
        return [weekly]
    return [(round(quota.five_hour * 100, 1), PRIMARY_WINDOW, five_reset), weekly]


async def usage(request: web.Request) -> web.StreamResponse:
    """``GET /backend-api/wham/usage``: plan and windows of the token's account (§5.10).

    Auth as the backend's: a bearer token and ``ChatGPT-Account-Id``, live and of that account.
    """
    incoming = await receive(request, USAGE)
    grant = _authenticate(incoming)
    if isinstance(grant, web.Response):
        return grant
    fault = incoming.world.faults.take(USAGE, rules.bearer_token(request.headers))
    if fault is not None:
        incoming.world.recorder.count(f"{USAGE}.fault.{fault.kind}")
        if fault.kind == "slow":
            await asyncio.sleep(float(fault.opts.get("delay", 0.2)))
        elif fault.kind == "not_json":
            incoming.record_status(200)
            return web.Response(status=200, text="<html>Just a moment...</html>", content_type="text/html")
        elif (refused := _refusal_for(incoming, fault, grant.identity.plan)) is not None:
            return refused
    now = int(time.time())
    rate_limit: dict[str, Any] = {"allowed": True, "limit_reached": False}
    windows = _windows(incoming.world.quota(PROVIDER, grant.identity.account_id), now)
    for slot, (used, minutes, reset) in zip(("primary_window", "secondary_window"), windows):
        rate_limit[slot] = {"used_percent": used, "limit_window_seconds": minutes * 60,
                            "reset_after_seconds": reset - now, "reset_at": reset}
    rate_limit.setdefault("secondary_window", None)
    body = {"plan_type": grant.identity.plan, "rate_limit": rate_limit, "credits": None,
            "rate_limit_reset_credits": {"available_count": 0}}
    return json_response(incoming, 200, body)


def _authenticate(incoming: Incoming) -> AccessGrant | web.Response:
    """The caller's grant, or the error response that refuses it."""
    headers = incoming.request.headers
    if rules.bearer_token(headers) is None:
        return json_response(incoming, 401, {"detail": "Missing bearer or basic authentication in header"})
    if rules.account_id(headers) is None:
        return json_response(incoming, 400, {"detail": "Missing ChatGPT-Account-ID header"})
    grant = incoming.world.tokens.valid_access(rules.bearer_token(headers))
    # The backend ties each token to one workspace: a wrong account id is as bad as a dead token.
    if grant is None or grant.identity.provider != PROVIDER or grant.identity.account_id != rules.account_id(headers):
        return json_response(incoming, 401, TOKEN_EXPIRED)
    return grant


async def _admit(
    request: web.Request, validate: Callable[[object], rules.Rejection | None]
) -> tuple[Incoming, str, Fault | None] | web.Response:
    """Headers, token, body and a scripted HTTP fault, in the backend's order.

    Returns the request, the account's plan and an in-stream fault (or None),
    or the response that refuses the request.
    """
    incoming = await receive(request, PROVIDER)
    grant = _authenticate(incoming)
    if isinstance(grant, web.Response):
        return grant
    if incoming.json_error:
        return json_response(incoming, 400, {"detail": "Request body is not valid JSON"})
    rejected = validate(incoming.body)
    if rejected is not None:
        incoming.world.recorder.count(f"{PROVIDER}.rejected.{rejected[0]}")
        return json_response(incoming, *rejected)
    plan = grant.identity.plan
    fault = incoming.world.faults.take(PROVIDER, rules.bearer_token(request.headers))
    if fault is not None:
        incoming.world.recorder.count(f"{PROVIDER}.fault.{fault.kind}")
        refused = _refusal_for(incoming, fault, plan)
        if refused is not None:
            return refused
    return incoming, plan, fault


async def responses(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, rules.validate_codex_body)
    if isinstance(admitted, web.Response):
        return admitted
    incoming, plan, fault = admitted
    return await _stream(incoming, fault, plan)


async def compact(request: web.Request) -> web.StreamResponse:
    """The history replaced by its user messages and one opaque ``compaction`` item."""
    admitted = await _admit(request, rules.validate_compact_body)
    if isinstance(admitted, web.Response):
        return admitted
    incoming, plan, _ = admitted
    body, seed = incoming.body, request_seed(incoming.body)
    kept = [
        {"type": "message", "role": "user", "content": item["content"]}
        for item in body["input"]
        if item.get("type", "message") == "message" and item.get("role") == "user"
    ]
    output = [*kept, _compaction_item(seed)]
    usage = codex_usage(body, Reply(thinking=None, text="compacted history"))
    result = {"id": stable_id("resp_", seed), "object": "response.compaction", "created_at": int(time.time()),
              "output": output, "usage": usage}
    incoming.world.recorder.set_usage(PROVIDER, usage)
    return json_response(incoming, 200, result, _usage_headers(incoming, plan))


def _compaction_item(seed: str) -> dict[str, Any]:
    return {"type": "compaction", "id": stable_id("cmp_", seed), "encrypted_content": issue_compaction(seed)}


# --- faults ------------------------------------------------------------------


def _refusal_for(incoming: Incoming, fault: Fault, plan: str) -> web.Response | None:
    """The HTTP error a fault answers with, or None for in-stream faults."""
    opts = fault.opts
    if fault.kind == "expired":
        return json_response(incoming, 401, TOKEN_EXPIRED)
    if fault.kind == "usage_limit":
        return _usage_limit(incoming, opts, plan)
    if fault.kind == "usage_not_included":
        error = {"type": "usage_not_included", "message": "Your plan does not include Codex.", "plan_type": plan}
        return json_response(incoming, int(opts.get("status", 429)), {"error": error}, _usage_headers(incoming, plan))
    if fault.kind == "rate_limited":
        return _rate_limited(incoming, opts, plan)
    if fault.kind == "bad_request":
        return json_response(incoming, 400, {"detail": opts.get("msg") or opts.get("message") or "Bad request"})
    if fault.kind == "server_error":
        return json_response(incoming, 500, SERVER_ERROR)
    if fault.kind == "http_error":
        body = opts.get("body", {"detail": "Scripted error"})
        return json_response(incoming, int(opts.get("status", 500)), body, opts.get("headers"))
    return None


def _rate_limited(incoming: Incoming, opts: dict[str, Any], plan: str) -> web.Response:
    retry = opts.get("retry_after", 30)
    message = f"Rate limit reached. Please try again in {retry}s."
    error = {"type": "rate_limit_exceeded", "code": "rate_limit_exceeded", "message": message}
    headers = _usage_headers(incoming, plan) | {"retry-after": str(retry)}
    return json_response(incoming, 429, {"error": error}, headers)


def _usage_limit(incoming: Incoming, opts: dict[str, Any], plan: str) -> web.Response:
    resets_in = int(opts.get("resets_in_seconds", 3600))
    error = {
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": opts.get("plan_type", plan),
        "resets_at": int(opts.get("resets_at", time.time() + resets_in)),
        "eligible_promo": None,
        "resets_in_seconds": resets_in,
    }
    return json_response(incoming, 429, {"error": error}, _usage_headers(incoming, plan, exhausted=True))


# --- streaming ---------------------------------------------------------------


def _events_for(incoming: Incoming, fault: Fault | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The unnumbered events to send and the usage they report (None if none)."""
    body = incoming.body
    response_id = stable_id("resp_", request_seed(body))
    if fault is not None and fault.kind == "failed":
        code = str(fault.opts.get("code", "server_error"))
        message = str(
            fault.opts.get("message", FAILED_MESSAGES.get(code, "An error occurred while processing your request."))
        )
        return wire.failed_events(body, response_id=response_id, code=code, message=message), None
    if (body["input"] or [{}])[-1].get("type") == "compaction_trigger":
        # In-band remote compaction: the answer is the compacted history alone.
        usage = codex_usage(body, Reply(thinking=None, text="compacted history"))
        items = [_compaction_item(request_seed(body))]
        return wire.stream_events(body, items, response_id=response_id, usage=usage), usage
    reply = codex_reply(body)
    usage = codex_usage(body, reply)
    items = wire.output_items(reply, body, request_seed(body))
    empty = fault is not None and fault.kind == "empty_output"
    return wire.stream_events(body, items, response_id=response_id, usage=usage, empty_output=empty), usage


async def _stream(incoming: Incoming, fault: Fault | None, plan: str) -> web.StreamResponse:
    events, usage = _events_for(incoming, fault)
    numbered = wire.numbered(events)
    kind = fault.kind if fault else None
    opts = fault.opts if fault else {}
    delay = float(opts.get("delay", 0.2)) if kind == "slow" else 0.0
    if kind == "slow" and opts.get("initial_delay"):
        await asyncio.sleep(float(opts["initial_delay"]))
    async with SseStream(incoming, _usage_headers(incoming, plan), delay=delay) as stream:
        if kind == "drop_mid_stream":
            await stream.send_all(numbered[: int(opts.get("after", STREAM_CUT_AFTER))])
            stream.drop()
            return stream.response
        await stream.send_all(numbered)
        if usage is not None:
            incoming.world.recorder.set_usage(PROVIDER, usage)
        stream.finished = True
    if not stream.client_gone:
        await stream.response.write_eof()
    return stream.response
