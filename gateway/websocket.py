"""The Responses API over WebSocket at /v1/responses, as Codex CLI speaks it (PROTOCOLS.md §3.7).

    client                                          gateway
    GET /v1/responses, Upgrade: websocket,    ->    101; the key checked as for HTTP (wrong-key throttle
      Authorization: Bearer KEY                     too): a refused one answers the first request with a
                                                    401/429 error frame, then the connection closes
    {"type":"response.create", <Responses body>} -> model, allowlist and limits checked per response,
                                                    then relay.relay(Job, send) with a send() that turns
                                              <-    the SSE it writes into one JSON text frame per event
    {"type":"response.create",                ->    the full input rebuilt from the connection's last
     "previous_response_id":"resp_1",               response (formats/responses_chain.py), since the
     "input":[only the new items]}                  upstreams keep no state
    {"type":"response.create","generate":false} ->  warm-up: answered here, no upstream call

Errors are ``{"type":"error","status":N,"error":{...},"headers":{...}}`` frames, always with a
status (Codex ignores an error frame without one), the connection stays open for the next
response. A client that closes mid-response cancels the upstream request. Each response leaves
one usage row, endpoint ``responses_ws`` (``responses_ws_warmup`` for warm-ups, zero tokens).
The server pings (uvicorn and daphne both, every 20 s); during a long upstream silence the
relay's keep-alive becomes a ``{"type":"keepalive"}`` frame, which Codex ignores but which
resets its idle timer (a ping does not). A connection idle for PROXYHUB_WS_IDLE_SECONDS
between responses is closed (1000); Codex reconnects for its next turn.

On SIGTERM (proxyhub/drain.py) the drain holds the process for every open connection: an idle
one is closed at once, a busy one once its response has finished, both with 1012 (service
restart), so Codex's next turn connects to another process; a response.create read meanwhile
gets the 503 error frame HTTP requests get. An upgrade during the drain is refused (503).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import suppress
from dataclasses import replace
from typing import Any

from django.conf import settings

from accounts.models import ApiKey
from gateway import admission, fastjson, limits, refusals
from gateway.admission import TOO_DEEP
from gateway.formats.responses_aggregate import ResponseAggregator, UpstreamStreamError
from gateway.formats.responses_chain import PreviousResponseNotFoundError, ResponseChain
from gateway.formats.sse import KEEPALIVE, Event, SSEParser
from gateway.http import Message, Receive, Request, Scope, Send
from gateway.refusals import RefusalError
from gateway.relay import Job, relay
from gateway.request_context import adopt as adopt_request_id
from gateway.usage import metrics
from gateway.usage.writer import record_usage
from proxyhub import drain

logger = logging.getLogger(__name__)

ENDPOINT = "responses_ws"
WARMUP_ENDPOINT = "responses_ws_warmup"
# The events the connection reads to remember a response's output; the rest go out unparsed.
_HISTORY_EVENTS = frozenset({"response.output_item.done", "response.completed", "response.incomplete",
                             "response.failed", "error"})


async def responses_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app for ``websocket`` scopes on /v1/responses and /backend-api/codex/responses."""
    if (await receive())["type"] != "websocket.connect":
        return
    if drain.draining():  # only a kept-alive connection can still ask: the listening sockets are shut
        await _refuse_upgrade(scope, send)
        return
    request = admission.new_request(scope)
    request.client_format = "responses"
    refused: dict[str, Any] | None = None
    try:
        api_key = await admission.authenticate(request)
    except RefusalError as exc:
        refused = refusals.frame(exc, request.request_id)
    await send({"type": "websocket.accept", "headers": [(b"x-request-id", request.request_id.encode("latin-1"))]})
    if refused is not None:
        await _refuse(refused, receive, send)
        return
    await Connection(request, api_key, receive, send).serve()


async def _refuse_upgrade(scope: Scope, send: Send) -> None:
    """503 with the shutting-down message (daphne sends the status line only: gateway/daphne_compat.py);
    Codex retries it on a new connection."""
    request_id = adopt_request_id(dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1"))
    body = fastjson.dumps(refusals.body(_shutting_down(), "responses"))
    await send({"type": "websocket.http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"), (b"x-request-id", request_id.encode("latin-1"))]})
    await send({"type": "websocket.http.response.body", "body": body})


def _shutting_down() -> RefusalError:
    return RefusalError(503, drain.SHUTTING_DOWN, headers={"retry-after": "1"})


async def _refuse(frame: dict[str, Any], receive: Receive, send: Send) -> None:
    """A refused key (401, or 429 from the wrong-key throttle) answers the first request as an error frame.

    Codex CLI treats such a frame as that HTTP answer (a 401: five retries, then it says why), as it
    treats a refused upgrade; a frame is used because daphne cannot send a refusal's body (the
    message) and uvicorn logs every refused handshake as an application error.
    """
    try:
        message = await asyncio.wait_for(receive(), settings.PROXYHUB_WS_IDLE_SECONDS or None)
    except asyncio.TimeoutError:
        message = {"type": "websocket.receive"}
    if message["type"] == "websocket.receive":
        with suppress(OSError, RuntimeError):
            await send({"type": "websocket.send", "text": fastjson.dumps(frame).decode()})
            await send({"type": "websocket.close", "code": 1008, "reason": "API key refused"})


# Put in the inbox to wake a connection waiting for the client: the drain has begun.
_WAKE: Message = {"type": "proxyhub.drain"}


class Connection:
    """One WebSocket: responses served one at a time, in order, with the conversation they chain."""

    def __init__(self, request: Request, api_key: ApiKey, receive: Receive, send: Send) -> None:
        self.request, self.api_key = request, api_key
        self._receive, self._send = receive, send
        self.chain = ResponseChain()
        self.inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.closed = False

    async def serve(self) -> None:
        reader = asyncio.ensure_future(self._read())
        idle = settings.PROXYHUB_WS_IDLE_SECONDS or None
        try:
            with drain.websocket_open(self):
                while True:
                    if drain.draining() and self.inbox.empty():
                        await self.close(drain.WEBSOCKET_CLOSE_CODE, "server shutting down")
                        return
                    try:
                        message = await asyncio.wait_for(self.inbox.get(), idle)
                    except asyncio.TimeoutError:
                        await self.close(1000, "idle timeout")
                        return
                    if message is None:
                        return
                    if message is _WAKE:
                        continue
                    if drain.draining():
                        await self._refuse_while_draining(message)
                        continue
                    await self._handle(message)
        finally:
            reader.cancel()

    def drain(self) -> None:
        """SIGTERM: wake serve() if it waits for the client; after a response in progress, it closes anyway."""
        self.inbox.put_nowait(_WAKE)

    def cut(self) -> None:
        """The drain time is over: the response in progress is cancelled as if the client had left."""
        self.gone.set()

    async def _refuse_while_draining(self, message: Message) -> None:
        """A message read during the drain: a request gets the 503 an HTTP request would, before the close."""
        try:
            kind = fastjson.loads(message.get("text") or message.get("bytes") or b"").get("type")
        except (ValueError, RecursionError, AttributeError):  # not a JSON object: refused as well
            kind = None
        if kind == "response.processed":
            return  # an older Codex acknowledging the response just finished: no request
        await self.send_frame(refusals.frame(_shutting_down(), adopt_request_id(None)))

    async def _read(self) -> None:
        """Every client message into the inbox: a response in progress keeps watching for a close."""
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                self.gone.set()
                self.closed = True
                await self.inbox.put(None)
                return
            if message["type"] == "websocket.receive":
                await self.inbox.put(message)

    async def send_text(self, text: str) -> None:
        """Send one frame; once the client is gone, frames are dropped (the response in progress is
        cancelled through ``gone``, so its usage row says client_cancelled)."""
        if self.closed:
            return
        try:
            await self._send({"type": "websocket.send", "text": text})
        except (OSError, RuntimeError):  # uvicorn raises ClientDisconnected (an OSError) after a close
            self.closed = True
            self.gone.set()

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send_text(fastjson.dumps(frame).decode())

    async def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            with suppress(OSError, RuntimeError):
                await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def _handle(self, message: Message) -> None:
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
        request = replace(self.request, request_id=adopt_request_id(None), extra=dict(self.request.extra))
        if len(text) > settings.PROXYHUB_MAX_BODY_BYTES:  # characters: cheap, and fewer than its UTF-8 bytes
            await self._error_frame(413, f"Message larger than {settings.PROXYHUB_MAX_BODY_BYTES} bytes.",
                                    "request_too_large")
            return
        try:
            frame = fastjson.loads(text)
        except ValueError as exc:
            await self._error_frame(400, f"Message is not valid JSON: {exc}", "invalid_json")
            return
        except RecursionError:  # orjson stops at 1024 levels and hands over to the stdlib, which recurses
            await self._error_frame(400, TOO_DEEP, "invalid_request_error")
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "response.processed":
            return  # older Codex builds acknowledge each response; nothing to do
        if kind != "response.create":
            await self._error_frame(400, f"Unsupported message type {kind!r}: send \"response.create\".",
                                    "invalid_request_error")
            return
        assert isinstance(frame, dict)
        metrics.request_started()
        try:
            await Response(self, request, frame).serve()
        except RecursionError:  # a body just under the parser's depth limit that a translator recursed through
            await self._error_frame(400, TOO_DEEP, "invalid_request_error")
        except Exception:
            logger.exception("unexpected error serving a WebSocket response")
            await self._error_frame(500, "Internal error in ProxyHub; the admin can find it in the server log.",
                                    "server_error")
        finally:
            metrics.request_finished()

    async def _error_frame(self, status: int, message: str, code: str) -> None:
        await self.send_frame(refusals.frame(RefusalError(status, message, error_type=code)))


class Response:
    """One ``response.create``: checked, relayed (or warmed up), and chained on success."""

    def __init__(self, connection: Connection, request: Request, frame: dict[str, Any]) -> None:
        self.connection, self.request, self.frame = connection, request, frame
        self.started = time.monotonic()
        self.warmup = frame.get("generate") is False
        self.record = admission.usage_row(request, connection.api_key, WARMUP_ENDPOINT if self.warmup else ENDPOINT,
                                          frame, stream=True)

    async def serve(self) -> None:
        connection, api_key = self.connection, self.connection.api_key
        sink = FrameSink(connection)
        ticket: limits.Ticket | None = None
        try:
            body = self._expanded()
            entry, thinking = await admission.resolve(api_key, "responses", body)
            if self.warmup:
                self.record.provider, self.record.upstream_model = entry.provider, entry.upstream_model
                await self._warm_up(body)
                return
            ticket = await limits.admit(api_key, entry.provider)
            self.record.provider, self.record.upstream_model = entry.provider, entry.upstream_model
            job = Job(self.request, "responses", "responses", body, api_key, entry, True, self.record, self.started,
                      thinking)
            await self._relay(job, sink)
        except RefusalError as exc:
            refusals.write_row(self.record, exc, self.started)  # before the answer, as every response
            await connection.send_frame(refusals.frame(exc, self.request.request_id))
            return
        finally:
            if ticket is not None:
                await limits.finish(ticket, self.record)
        completed = sink.completed()
        if completed is not None:
            connection.chain.remember(body, str(completed.get("id") or ""), completed.get("output") or [])

    def _expanded(self) -> dict[str, Any]:
        """The request with the conversation it continues (``previous_response_id``) filled in."""
        try:
            return self.connection.chain.expand(self.frame)
        except PreviousResponseNotFoundError as exc:
            # Codex resends the full request on a new connection when told this code (CLIProxyAPI: 409).
            raise RefusalError(409, exc.message, error_type="previous_response_not_found") from None

    async def _relay(self, job: Job, sink: FrameSink) -> None:
        """relay() until it ends or the client goes away, which cancels it (and the upstream request)."""
        work = asyncio.ensure_future(relay(job, sink))
        gone = asyncio.ensure_future(self.connection.gone.wait())
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
                with suppress(asyncio.CancelledError):
                    await work
                logger.info("WebSocket response stopped (the client closed, or the drain time ran out); "
                            "upstream request cancelled")
                return
            work.result()
        finally:
            gone.cancel()
            if not work.done():  # we were cancelled ourselves (server shutdown): pass it on
                work.cancel()

    async def _warm_up(self, body: dict[str, Any]) -> None:
        """``generate: false``: created + completed with no output, remembered as the chain's start."""
        response_id = "resp_" + uuid.uuid4().hex
        response: dict[str, Any] = {"id": response_id, "object": "response", "created_at": int(time.time()),
                                    "status": "in_progress", "model": body.get("model"), "output": [],
                                    "usage": None}
        self.record.status_code = 200
        self.record.duration_ms = int((time.monotonic() - self.started) * 1000)
        self.record.ttfb_ms = self.record.duration_ms
        record_usage(self.record)  # before the answer, as every response
        await self.connection.send_frame({"type": "response.created", "sequence_number": 0, "response": response})
        usage = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}
        done = {**response, "status": "completed", "usage": usage}
        await self.connection.send_frame({"type": "response.completed", "sequence_number": 1, "response": done})
        self.connection.chain.remember(body, response_id, [])


class FrameSink:
    """The ASGI ``send`` that relay() writes its HTTP answer to, speaking WebSocket frames instead.

    relay() answers a WebSocket response (always a stream) with a 200 stream: each SSE event's
    data (already JSON with its ``type``) goes out as one text frame; a stream-level ``error``
    event gets a status so Codex acts on it (a refusal before the stream is raised, not sent:
    Response.serve() answers it). The events that finish output items are read on the way,
    so the connection can chain the next response to this one.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.parser = SSEParser()
        self.aggregator = ResponseAggregator()
        self.terminal = ""

    async def __call__(self, message: Message) -> None:
        if message["type"] != "http.response.body":
            return  # http.response.start: the 200 and its headers have no frame
        body: bytes = message.get("body", b"")
        if body == KEEPALIVE:
            await self.connection.send_frame({"type": "keepalive"})
            return
        for event in self.parser.feed(body):
            await self._send_event(event)
        if not message.get("more_body", False):
            for event in self.parser.finish():
                await self._send_event(event)

    async def _send_event(self, event: Event) -> None:
        name = event.event
        if name in _HISTORY_EVENTS or not name:
            data = event.object()
            if data is None:
                return
            name = str(data.get("type") or name)
            self.aggregator.feed(Event(name, event.data))
            if name == "error":
                status = _stream_error_status(str(data.get("code") or ""))
                error = {"type": data.get("code") or "server_error", "code": data.get("code"),
                         "message": data.get("message") or "upstream error"}
                self.terminal = name
                await self.connection.send_frame({"type": "error", "status": status, "error": error, "headers": {}})
                return
            if name in ("response.completed", "response.incomplete", "response.failed"):
                self.terminal = name
        await self.connection.send_text(event.data)

    def completed(self) -> dict[str, Any] | None:
        """The completed response (id and output items), or None when it did not complete."""
        if self.terminal != "response.completed":
            return None
        try:
            return self.aggregator.result()
        except UpstreamStreamError:  # an unreadable end leaves the chain as it was
            return None


def _stream_error_status(code: str) -> int:
    """The HTTP status Codex should treat a stream-level error as: it retries 5xx, honours 429."""
    if code in ("rate_limit_exceeded", "usage_limit_reached", "rate_limit_error"):
        return 429
    if code in ("context_length_exceeded", "invalid_request_error", "invalid_prompt"):
        return 400
    return 502
