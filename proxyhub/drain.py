"""Graceful shutdown: on SIGTERM stop accepting, let the requests in flight finish, flush usage, exit 0.

Requests get up to PROXYHUB_DRAIN_SECONDS (default 30); whatever still runs
then is cancelled (its usage row says client_cancelled) and written too.

WebSocket connections (Codex CLI, gateway/websocket.py) register while open
(websocket_open()). At SIGTERM an idle one is closed at once and a busy one
after the response in progress, with 1012 (service restart): Codex reconnects
for its next turn, to a process that is not leaving. A response.create that
arrives meanwhile gets the 503 refusal as an error frame, then the close.

- uvicorn (any server with the ASGI lifespan protocol) stops accepting and
  waits by itself: run it with ``--lifespan on --timeout-graceful-shutdown
  $PROXYHUB_DRAIN_SECONDS``. lifespan() flushes the usage writer at shutdown.
  With several workers the supervisor keeps the listening socket open until
  they have exited, so the SIGTERM handler shuts the socket down first
  (_refuse_at_sigterm): new connections are refused, not left in the backlog.
  uvicorn then re-raises the SIGTERM it caught with the default handler, which
  would kill the process (exit 143) after a clean drain; blocking the signal
  once everything is written makes that a no-op and the process exits 0.
- daphne has no lifespan hook, and on SIGTERM Twisted stops at once and
  daphne cancels every stream. install() (from the first ASGI event, after
  Twisted installed its handlers) replaces that handler: close the listening
  sockets, answer a request arriving on a kept-alive connection with 503,
  wait for the requests in flight, flush, then stop the reactor (exit 0).
- uvicorn's own shutdown would close every WebSocket at once with 1012,
  cutting a response in progress. So while WebSockets are open, the SIGTERM
  handler first lets them finish (their responses within the drain time), then
  hands the signal to uvicorn with what is left of the drain time as its
  graceful-shutdown timeout; HTTP requests run on meanwhile and new ones on a
  kept-alive connection get the 503. With none open, uvicorn starts at once.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

FLUSH_TIMEOUT = 10.0  # seconds for the last usage write; what the database does not take stays in the journal
CUT_GRACE = 2.0  # seconds for a WebSocket response cut at the end of the drain time to record its row and close
# Service restart: the client may reconnect at once (RFC 6455 registry); uvicorn's own shutdown sends it too.
WEBSOCKET_CLOSE_CODE = 1012


class Drainable(Protocol):
    """An open WebSocket connection, as the drain sees it."""

    def drain(self) -> None:
        """SIGTERM: close when idle, or after the response in progress (called on the event loop)."""

    def cut(self) -> None:
        """The drain time is over: cancel the response in progress, then close."""


_in_flight = 0
_draining = False
_installed = False
_websockets: set[Drainable] = set()
_tasks: set[asyncio.Task[None]] = set()  # the drain task, referenced so it is not collected mid-drain

SHUTTING_DOWN = "This ProxyHub process is shutting down; retry the request."
REFUSAL = (b'{"type":"error","error":{"type":"overloaded_error","message":"' + SHUTTING_DOWN.encode() + b'"}}')


def draining() -> bool:
    """True once this process received SIGTERM and is finishing its requests."""
    return _draining


@contextmanager
def websocket_open(connection: Drainable) -> Iterator[None]:
    """Hold the drain for ``connection`` while it is open (a connection opened while draining is drained at once)."""
    _websockets.add(connection)
    try:
        if _draining:
            connection.drain()
        yield
    finally:
        _websockets.discard(connection)


def in_flight() -> int:
    """HTTP requests this process is serving now."""
    return _in_flight


async def serve(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one HTTP request through ``app``, counted while it runs; refused with 503 while draining."""
    global _in_flight
    if _draining:
        await _refuse(scope, send)
        return
    _in_flight += 1
    try:
        await app(scope, receive, send)
    finally:
        _in_flight -= 1


async def _refuse(scope: Scope, send: Send) -> None:
    from gateway.request_context import adopt

    sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(REFUSAL)).encode()),
               (b"retry-after", b"1"), (b"connection", b"close"), (b"x-request-id", adopt(sent).encode())]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": REFUSAL})


async def lifespan(receive: Receive, send: Send, startup: Callable[[], None]) -> None:
    """The ASGI lifespan protocol (uvicorn): call ``startup``; at shutdown, flush and exit 0."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            startup()
            _refuse_at_sigterm()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await finish()
            # uvicorn re-raises the signal it caught once this returns (see the module docstring).
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
            await send({"type": "lifespan.shutdown.complete"})
            return


def _refuse_at_sigterm() -> None:
    """Close the listening sockets for every process sharing them as soon as SIGTERM arrives, then go on as before.

    Several uvicorn workers share a socket their supervisor also holds until
    they have all exited: closing it in a worker would not refuse anything, and
    connections arriving during the drain would wait unanswered in the backlog.
    shutdown() acts on the socket itself, so the kernel refuses them at once.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach the main thread only (a server run in a thread, as tests do)
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: Any) -> None:
        global _draining
        _shut_listening_sockets()
        if _draining or not _websockets or loop.is_closed():
            previous(signum, frame)  # nothing to hold uvicorn for (a second SIGTERM: stop holding it)
            _draining = True
            return
        _draining = True
        loop.call_soon_threadsafe(_begin_uvicorn_drain, loop, previous, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def _begin_uvicorn_drain(loop: asyncio.AbstractEventLoop, previous: Callable[[int, Any], Any], signum: int,
                         frame: Any) -> None:
    # A fresh context: the drain's log lines are about no request.
    task = loop.create_task(_drain_websockets_then(previous, signum, frame), context=contextvars.Context())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _drain_websockets_then(previous: Callable[[int, Any], Any], signum: int, frame: Any) -> None:
    """Finish the WebSocket responses in flight, then let uvicorn shut down in what is left of the drain time."""
    seconds = settings.PROXYHUB_DRAIN_SECONDS
    deadline = time.monotonic() + seconds
    logger.info("SIGTERM: no longer accepting; waiting up to %s s for %d WebSocket connections", seconds,
                len(_websockets))
    await _drain_websockets(deadline)
    # previous is uvicorn's Server.handle_exit: its config's timeout is the wait for the HTTP requests left.
    config = getattr(getattr(previous, "__self__", None), "config", None)
    if getattr(config, "timeout_graceful_shutdown", None) is not None:
        config.timeout_graceful_shutdown = max(deadline - time.monotonic(), 1.0)
    previous(signum, frame)


async def _drain_websockets(deadline: float) -> None:
    """Close the idle WebSockets, wait for the busy ones until ``deadline``, then cut what is left."""
    for connection in list(_websockets):
        connection.drain()
    while _websockets and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if not _websockets:
        return
    logger.warning("drain time over: cancelling the responses of %d WebSocket connections", len(_websockets))
    for connection in list(_websockets):
        connection.cut()
    cut_deadline = time.monotonic() + CUT_GRACE
    while _websockets and time.monotonic() < cut_deadline:
        await asyncio.sleep(0.05)


def _shut_listening_sockets() -> None:
    if not os.path.isdir("/proc/self/fd"):
        return  # not Linux: uvicorn's own shutdown still stops accepting, a supervisor's backlog waits
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))  # a duplicate: closing it leaves the server's fd alone
        except OSError:
            continue  # not a socket, or already gone
        with sock:
            try:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass


async def finish() -> None:
    """Write the usage rows still queued and close the upstream clients; the process is about to exit."""
    from credentials.refresh import aclose_client
    from gateway import shared
    from gateway.upstream.client import close_sessions
    from gateway.usage import writer

    try:
        if not await asyncio.wait_for(writer.aflush(), FLUSH_TIMEOUT):
            logger.warning("shutdown: the database refused the last usage rows; they wait in the journal")
    except asyncio.TimeoutError:
        logger.warning("shutdown: usage rows not written within %s s; they wait in the journal", FLUSH_TIMEOUT)
    await close_sessions()
    await aclose_client()
    await shared.aclose()


def install() -> None:
    """Under daphne, take over SIGTERM (call from the running loop, once Twisted runs)."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        reactor = _reactor()
    except ImportError:
        return
    if not getattr(reactor, "running", False):
        return  # not daphne (uvicorn imports daphne's app, which installs the reactor without running it)
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(_begin_daphne_drain, loop)

    signal.signal(signal.SIGTERM, on_sigterm)


def _reactor() -> Any:
    """Twisted's global reactor (typed Any: its module-level instance confuses mypy)."""
    from twisted.internet import reactor

    return reactor


def _begin_daphne_drain(loop: asyncio.AbstractEventLoop) -> None:
    global _draining
    reactor = _reactor()
    if _draining:
        logger.warning("second SIGTERM: stopping now, cancelling %d requests", _in_flight + len(_websockets))
        reactor.stop()
        return
    _draining = True
    # A fresh context: the drain's log lines are about no request.
    task = loop.create_task(_drain_daphne(), context=contextvars.Context())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _drain_daphne() -> None:
    from twisted.internet import tcp

    reactor = _reactor()
    for reader in reactor.getReaders():
        if isinstance(reader, tcp.Port):
            reader.stopListening()
    seconds = settings.PROXYHUB_DRAIN_SECONDS
    logger.info("SIGTERM: no longer accepting; waiting up to %s s for %d requests in flight and %d WebSocket "
                "connections", seconds, _in_flight, len(_websockets))
    deadline = time.monotonic() + seconds
    websockets = asyncio.ensure_future(_drain_websockets(deadline))
    while (_in_flight or not websockets.done()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await websockets  # past the deadline: it cuts the responses left and waits for their rows
    if _in_flight:
        logger.warning("drain time over: cancelling %d requests still in flight", _in_flight)
    await finish()
    logger.info("drained; stopping")
    reactor.stop()
