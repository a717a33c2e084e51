"""The /v1 ASGI application: a tiny path router and one handler per endpoint.

No Django middleware or request object sits on this path. Each handler reads
the body under a size limit, then takes the request steps of gateway.admission
(the key from an in-process cache, the model from the catalog), the key's
limits, and hands the work to relay.relay(). A refusal on the way, the
gateway's or the upstream's, is a RefusalError, answered by gateway.refusals.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Awaitable

from django.conf import settings

from gateway import admission, daphne_compat, fastjson, limits, refusals
from gateway.admission import TOO_DEEP
from gateway.http import BodyTooLargeError, ClientGoneError, Receive, Request, Scope, Send, read_body, send_bytes, send_json
from gateway.model_list import anthropic_models, available_entries, openai_models
from gateway.refusals import RefusalError
from gateway.relay import Job, relay
from gateway.translate.errors import COMPACTION_UNSUPPORTED
from gateway.upstream.registry import UPSTREAMS
from gateway.usage import metrics
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
CHECK_HEADER = "x-proxyhub-check"  # set by gateway.doctor: the usage row is marked as a check


def _format_for(path: str, headers: dict[str, str]) -> str:
    if "messages" in path or "anthropic-version" in headers:
        return "anthropic"
    return "chat"


async def gateway_application(scope: Scope, receive: Receive, send: Send) -> None:
    request = admission.new_request(scope)
    path, method = request.path, request.method
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
        await refusals.send(send, _format_for(path, request.headers), RefusalError(
            404, f"Unknown path {path}: add /v1 to the base URL (e.g. http://HOST:8317/v1{path}). "
                 "Anthropic clients use the server root without /v1."))
    elif path in POST_ROUTES or path == "/v1/models":
        await refusals.send(send, _format_for(path, request.headers), RefusalError(
            405, f"Method {method} not allowed on {path}.", headers={"allow": "GET" if path == "/v1/models" else "POST"}))
    else:
        await refusals.send(send, _format_for(path, request.headers),
                            RefusalError(404, f"Unknown endpoint {method} {path}."))


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
            await refusals.send(send, request.client_format, RefusalError(400, TOO_DEEP))
    except Exception:
        logger.exception("unexpected error serving %s", request.path)
        if not started:
            await refusals.send(send, request.client_format, RefusalError(
                500, "Internal error in ProxyHub; the admin can find it in the server log."))


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


async def _read_json(request: Request, receive: Receive) -> dict[str, Any]:
    """The request's JSON object; raises RefusalError (too large, not JSON) or ClientGoneError."""
    try:
        raw = await read_body(receive, settings.PROXYHUB_MAX_BODY_BYTES)
    except BodyTooLargeError:
        raise RefusalError(413, f"Request body larger than {settings.PROXYHUB_MAX_BODY_BYTES} bytes.") from None
    try:
        body = fastjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RefusalError(400, f"Request body is not valid JSON: {exc}") from None
    except RecursionError:  # orjson stops at 1024 levels and hands over to the stdlib, which recurses
        raise RefusalError(400, TOO_DEEP) from None
    if not isinstance(body, dict):
        raise RefusalError(400, "Request body must be a JSON object.")
    return body


async def _generate(request: Request, endpoint: str, receive: Receive, send: Send) -> None:
    metrics.request_started()
    try:
        await _serve_generation(request, endpoint, receive, send)
    finally:
        metrics.request_finished()


async def _serve_generation(request: Request, endpoint: str, receive: Receive, send: Send) -> None:
    started = time.monotonic()
    try:
        body = await _read_json(request, receive)
        api_key = await admission.authenticate(request)
    except ClientGoneError:
        return
    except RefusalError as exc:  # before the key is known: no usage row
        await refusals.send(send, request.client_format, exc)
        return
    stream = bool(body.get("stream")) and endpoint not in ("count_tokens", "compact")
    # A key check (gateway.doctor): only a label on the key holder's own row, so any authenticated caller may set it.
    record = admission.usage_row(request, api_key, endpoint, body, stream=stream,
                                 is_check=request.headers.get(CHECK_HEADER) == "1")
    ticket: limits.Ticket | None = None
    try:
        entry, thinking = await admission.resolve(api_key, endpoint, body)
        ticket = await limits.admit(api_key, entry.provider)  # every limit of the key, one round trip
        record.provider, record.upstream_model = entry.provider, entry.upstream_model
        job = Job(request, request.client_format, endpoint, body, api_key, entry, stream, record, started, thinking)
        upstream = UPSTREAMS[entry.provider]
        if endpoint == "count_tokens" and not upstream.counts_tokens:
            await _estimate_tokens(job, send)
        elif endpoint == "compact" and not upstream.compacts:
            raise RefusalError(501, f"{entry.name!r}: {COMPACTION_UNSUPPORTED}", error_type="compaction_unsupported")
        else:
            await _cancel_on_disconnect(relay(job, send), receive)
    except RefusalError as exc:
        refusals.write_row(record, exc, started)  # before the answer: a killed worker still has the row
        await refusals.send(send, request.client_format, exc)
    finally:
        if ticket is not None:
            await limits.finish(ticket, record)  # the slot back; tokens and cost counted in the background


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
    try:
        api_key = await admission.authenticate(request)
    except RefusalError as exc:
        await refusals.send(send, request.client_format, exc)
        return
    entries = await available_entries(api_key)
    if request.path.startswith("/v1/models/"):
        wanted = request.path[len("/v1/models/"):]
        match = [e for e in entries if e.name == wanted]
        if not match:
            await refusals.send(send, request.client_format,
                                RefusalError(404, f"Model {wanted!r} not found.", error_type="model_not_found"))
            return
        entries = match
        listing = anthropic_models(entries) if anthropic else openai_models(entries)
        await send_json(send, 200, listing["data"][0])
        return
    await send_json(send, 200, anthropic_models(entries) if anthropic else openai_models(entries))
