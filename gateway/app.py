"""The /v1 ASGI application: a tiny path router and one handler per endpoint.

No Django middleware or request object sits on this path. Each handler reads
the body under a size limit, authenticates the key from an in-process cache,
resolves the model in the catalog and hands the work to relay.relay().
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Awaitable

from django.conf import settings

from accounts.models import ApiKey
from gateway import catalog, daphne_compat, fastjson, keycache, keyguard, limits
from gateway.catalog import Entry
from gateway.formats.errors import error_body
from gateway.http import (
    BodyTooLargeError, ClientGoneError, Receive, Request, Scope, Send, read_body, send_bytes, send_error, send_json,
)
from gateway.model_list import anthropic_models, available_entries, openai_models
from gateway.request_context import adopt as adopt_request_id
from gateway.relay import Job, relay
from gateway.translate import model_suffix
from gateway.translate.errors import COMPACTION_UNSUPPORTED, TranslationError
from gateway.usage import metrics
from gateway.usage.rows import Outcome, UsageRow
from gateway.usage.writer import record_usage

logger = logging.getLogger(__name__)

# path -> (endpoint, client format)
POST_ROUTES = {
    "/v1/messages": ("messages", "anthropic"),
    "/v1/messages/count_tokens": ("count_tokens", "anthropic"),
    "/v1/chat/completions": ("chat", "chat"),
    "/v1/responses": ("responses", "responses"),
    "/backend-api/codex/responses": ("responses", "responses"),
    # Remote compaction: Codex CLI's built-in OpenAI provider calls it (openai_base_url).
    "/v1/responses/compact": ("compact", "responses"),
    "/backend-api/codex/responses/compact": ("compact", "responses"),
}
BARE_PATHS = ("/messages", "/chat/completions", "/responses", "/models", "/completions")
TOO_DEEP = "Request body is nested too deeply."
CHECK_HEADER = "x-proxyhub-check"  # set by gateway.doctor: the usage row is marked as a check


def normalise_path(path: str) -> str:
    path = path.rstrip("/") or "/"
    # Guides often give Droid's anthropic provider a base URL ending in /v1 (PROTOCOLS.md §7.1).
    while path.startswith("/v1/v1/"):
        path = path[3:]
    return path


def _format_for(path: str, headers: dict[str, str]) -> str:
    if "messages" in path or "anthropic-version" in headers:
        return "anthropic"
    return "chat"


async def gateway_application(scope: Scope, receive: Receive, send: Send) -> None:
    path = normalise_path(scope["path"])
    request = Request.from_scope(scope)
    request.path = path
    request.request_id = adopt_request_id(request.headers.get("x-request-id"))
    request.extra["client"] = scope.get("client")  # (host, port): the wrong-key throttle counts per host
    method = request.method
    if method == "POST" and path in POST_ROUTES:
        endpoint, client_format = POST_ROUTES[path]
        request.client_format = client_format
        await _generate_safely(request, endpoint, receive, send)
    elif method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
        await _models(request, receive, send)
    elif method == "GET" and path in ("/v1/responses", "/backend-api/codex/responses"):
        # A GET here is the WebSocket mode (gateway/websocket.py) without its upgrade: a server started
        # without a WebSocket library sees Codex CLI's upgrade so, and 426 makes Codex use HTTP streaming.
        await send_bytes(send, 426, b'{"error":{"message":"GET on this path is the WebSocket mode: send '
                                    b'Upgrade: websocket, or POST for HTTP streaming.",'
                                    b'"type":"invalid_request_error","param":null,"code":"upgrade_required"}}')
    elif path.startswith(BARE_PATHS):
        await send_error(send, _format_for(path, request.headers), 404,
                         f"Unknown path {path}: add /v1 to the base URL (e.g. http://HOST:8317/v1{path}). "
                         "Anthropic clients use the server root without /v1.")
    elif path in POST_ROUTES or path == "/v1/models":
        await send_error(send, _format_for(path, request.headers), 405, f"Method {method} not allowed on {path}.",
                         headers={"allow": "GET" if path == "/v1/models" else "POST"})
    else:
        await send_error(send, _format_for(path, request.headers), 404, f"Unknown endpoint {method} {path}.")


async def _generate_safely(request: Request, endpoint: str, receive: Receive, send: Send) -> None:
    """A bug must still answer in the client's format, without a traceback or a secret."""
    started = False

    async def tracking_send(message: dict[str, Any]) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await _generate(request, endpoint, receive, tracking_send)
    except RecursionError:
        # A body just under the parser's depth limit can still be too deep for a translator or the
        # stdlib encoder; that is the client's input, not a bug (issue 10).
        logger.info("request body nested too deeply for %s", request.path)
        if not started:
            await send_error(send, request.client_format, 400, TOO_DEEP)
    except Exception:
        logger.exception("unexpected error serving %s", request.path)
        if not started:
            await send_error(send, request.client_format, 500,
                             "Internal error in ProxyHub; the admin can find it in the server log.")


async def websocket_refusal(scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket on a path that has none (only /v1/responses has, gateway/websocket.py): 426 at once,
    which makes a client such as Codex CLI fall back to HTTP streaming."""
    message = await receive()
    if message["type"] == "websocket.connect":
        if daphne_compat.INSTALLED or "websocket.http.response" in (scope.get("extensions") or {}):
            body = (b'{"error":{"message":"No WebSocket endpoint at this path (only /v1/responses); '
                    b'use HTTP.","code":"upgrade_required"}}')
            await send({"type": "websocket.http.response.start", "status": 426,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


async def _cancel_on_disconnect(work: Awaitable[None], receive: Receive) -> None:
    """Run ``work`` (the body was read already); cancel it if the client disconnects."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        await task
    except asyncio.CancelledError:
        if task.cancelled() and watcher.done():
            logger.info("client disconnected; upstream request cancelled")
            return
        task.cancel()  # we were cancelled ourselves (server shutdown): pass it on
        raise
    finally:
        watcher.cancel()


async def _read_json(request: Request, receive: Receive, send: Send) -> dict[str, Any] | None:
    try:
        raw = await read_body(receive, settings.PROXYHUB_MAX_BODY_BYTES)
    except BodyTooLargeError:
        await send_error(send, request.client_format, 413,
                         f"Request body larger than {settings.PROXYHUB_MAX_BODY_BYTES} bytes.")
        return None
    except ClientGoneError:
        return None
    try:
        body = fastjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        await send_error(send, request.client_format, 400, f"Request body is not valid JSON: {exc}")
        return None
    except RecursionError:  # orjson stops at 1024 levels and hands over to the stdlib, which recurses
        await send_error(send, request.client_format, 400, TOO_DEEP)
        return None
    if not isinstance(body, dict):
        await send_error(send, request.client_format, 400, "Request body must be a JSON object.")
        return None
    return body


async def authenticate(request: Request, send: Send) -> ApiKey | None:
    check = await keycache.acheck(request.api_key())
    if check.api_key is not None:
        return check.api_key
    # Failures only are counted per address (gateway.keyguard): a valid key behind the same NAT still works.
    wait = await keyguard.note_failure(request.extra.get("client"), request.headers.get("x-forwarded-for"))
    if wait is not None:
        seconds = int(wait + 0.999)
        await send_error(send, request.client_format, 429, keyguard.throttled_message(seconds),
                         code="rate_limit_exceeded", headers={"retry-after": str(seconds)})
        return None
    await send_error(send, request.client_format, 401, keyguard.refusal_message(check), code="invalid_api_key")
    return None


async def _generate(request: Request, endpoint: str, receive: Receive, send: Send) -> None:
    metrics.request_started()
    try:
        await _serve_generation(request, endpoint, receive, send)
    finally:
        metrics.request_finished()


async def _serve_generation(request: Request, endpoint: str, receive: Receive, send: Send) -> None:
    started = time.monotonic()
    body = await _read_json(request, receive, send)
    if body is None:
        return
    api_key = await authenticate(request, send)
    if api_key is None:
        return
    stream = bool(body.get("stream")) and endpoint not in ("count_tokens", "compact")
    record = UsageRow(
        api_key_id=api_key.pk, user_id=api_key.user_id, key_prefix=api_key.prefix,
        endpoint=endpoint, requested_model=str(body.get("model") or "")[:100], stream=stream,
        request_id=request.request_id,
        # A key check (gateway.doctor): only a label on the key holder's own row, so any authenticated caller may set it.
        is_check=request.headers.get(CHECK_HEADER) == "1",
    )
    try:
        check_required_fields(endpoint, body)
        entry, thinking = await resolve_model(api_key, body)
        ticket = await limits.admit(api_key, entry.provider)  # every limit of the key, one round trip
    except (Rejection, limits.LimitExceededError) as exc:
        await reject(request, send, record, exc, started)
        return
    record.provider, record.upstream_model = entry.provider, entry.upstream_model
    job = Job(request, request.client_format, endpoint, body, api_key, entry, stream, record, started, thinking)
    try:
        if endpoint == "count_tokens" and entry.provider != "claude":
            await _estimate_tokens(job, send)
            return
        if endpoint == "compact" and entry.provider != "codex":
            exc = Rejection(501, f"{entry.name!r}: {COMPACTION_UNSUPPORTED}", "compaction_unsupported")
            await reject(request, send, record, exc, started)
            return
        await _cancel_on_disconnect(relay(job, send), receive)
    finally:
        await limits.finish(ticket, record)  # the slot back; tokens and cost counted in the background


class Rejection(Exception):
    """The gateway refuses a request before any upstream call (bad model, not allowed)."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def check_required_fields(endpoint: str, body: dict[str, Any]) -> None:
    """OpenAI answers a Responses request without ``input`` with this 400; the upstreams would not
    (Claude's translation made an empty conversation, Codex an empty answer)."""
    if endpoint == "responses" and body.get("input") is None:
        raise Rejection(400, "Missing required parameter: 'input'.", "missing_required_parameter", param="input")


async def resolve_model(api_key: ApiKey, body: dict[str, Any]) -> tuple[Entry, str]:
    """The catalog entry for the body's model, and a thinking level given as ``model(level)``."""
    requested = body.get("model")
    if not isinstance(requested, str) or not requested:
        raise Rejection(400, "`model` is required.", "missing_model")
    name, thinking = model_suffix.split_model(requested)
    try:
        model_suffix.validate(thinking)
    except TranslationError as exc:
        raise Rejection(400, exc.message, "invalid_thinking_level") from None
    entry = await catalog.aresolve(name)
    if entry is None:
        allowed = [e.name for e in await catalog.aentries() if api_key.allows(e.name)]
        raise Rejection(404, f"Unknown model {name!r}. Models this key may use: {', '.join(allowed) or 'none'}.",
                        "model_not_found")
    if not (api_key.allows(name) or api_key.allows(entry.name)):
        raise Rejection(403, f"This API key may not use model {name!r}.", "model_not_allowed")
    return entry, thinking


async def reject(request: Request, send: Send, record: UsageRow, exc: Exception, started: float) -> None:
    """Answer a refused request in the client's format; it still leaves a usage record (written first)."""
    if isinstance(exc, limits.LimitExceededError):
        status, code = 429, "rate_limit_exceeded"
        seconds = str(max(int(exc.retry_after + 0.999), 1))
        message, headers = f"{exc.message} Try again in {seconds} s.", {"retry-after": seconds}
    else:
        assert isinstance(exc, Rejection)
        status, code, message, headers = exc.status, exc.code, exc.message, {}
    record.status_code, record.error_type = status, code
    record.outcome = Outcome.REJECTED
    record.duration_ms = int((time.monotonic() - started) * 1000)
    record_usage(record)
    param = exc.param if isinstance(exc, Rejection) else None
    body = error_body(request.client_format, status, message, code=code, param=param)
    await send_json(send, status, body, headers=headers or None)


async def _estimate_tokens(job: Job, send: Send) -> None:
    """count_tokens for a model whose upstream has no such endpoint: ~4 characters a token."""
    countable = {k: job.body.get(k) for k in ("system", "messages", "tools") if k in job.body}
    tokens = max(1, len(json.dumps(countable, ensure_ascii=False)) // 4)
    job.record.status_code = 200
    job.record.duration_ms = int((time.monotonic() - job.started) * 1000)
    record_usage(job.record)  # before the answer: a killed worker still has the row
    await send_json(send, 200, {"input_tokens": tokens})


async def _models(request: Request, receive: Receive, send: Send) -> None:
    anthropic = "anthropic-version" in request.headers
    request.client_format = "anthropic" if anthropic else "chat"
    api_key = await authenticate(request, send)
    if api_key is None:
        return
    entries = await available_entries(api_key)
    if request.path.startswith("/v1/models/"):
        wanted = request.path[len("/v1/models/"):]
        match = [e for e in entries if e.name == wanted]
        if not match:
            await send_error(send, request.client_format, 404, f"Model {wanted!r} not found.", code="model_not_found")
            return
        entries = match
        listing = anthropic_models(entries) if anthropic else openai_models(entries)
        await send_json(send, 200, listing["data"][0])
        return
    await send_json(send, 200, anthropic_models(entries) if anthropic else openai_models(entries))
