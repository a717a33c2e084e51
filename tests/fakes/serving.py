"""Plumbing shared by the fake apps: shared state, request intake, SSE writing.

``World`` is everything the tests and the handlers share (tokens, faults,
records, quota).  ``receive()`` records a request before anything can reject
it.  ``SseStream`` writes events, applies the ``slow`` delay, and notices a
client that went away (the server runs with handler cancellation, so that
surfaces as CancelledError; a write to a closed transport as
ConnectionResetError).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .faults import FaultBook
from .prompt_cache import PromptCache
from .recording import Recorded, Recorder
from .tokens import TokenRegistry


@dataclass(frozen=True)
class Quota:
    """Utilization (0..1) the fakes report in their rate-limit headers and usage endpoints.

    ``scoped`` holds Claude's model-scoped weekly windows (``{"sonnet": 0.56}``);
    ``weekly_only`` makes a ChatGPT plan whose only window is a weekly primary one
    (PROTOCOLS.md §5.10).  Reset times are absolute unix seconds, so every
    answer about one window agrees; None picks the next whole hour (5-hour
    window) or day (weekly).
    """

    five_hour: float = 0.12
    seven_day: float = 0.05
    scoped: tuple[tuple[str, float], ...] = ()
    weekly_only: bool = False
    five_hour_reset: float | None = None
    seven_day_reset: float | None = None

    def resets(self, now: float) -> tuple[int, int]:
        five = self.five_hour_reset or (now // 3600 + 1) * 3600
        week = self.seven_day_reset or (now // 86400 + 1) * 86400 + 5 * 86400
        return int(five), int(week)


@dataclass
class World:
    tokens: TokenRegistry = field(default_factory=TokenRegistry)
    faults: FaultBook = field(default_factory=FaultBook)
    recorder: Recorder = field(default_factory=Recorder)
    quotas: dict[str, Quota] = field(default_factory=lambda: {"claude": Quota(), "codex": Quota()})
    account_quotas: dict[tuple[str, str], Quota] = field(default_factory=dict)  # (provider, account id)
    quota_lock: threading.Lock = field(default_factory=threading.Lock)
    prompt_cache: PromptCache = field(default_factory=PromptCache)  # Anthropic's, per account

    def quota(self, provider: str, account_id: str | None = None) -> Quota:
        """The account's own quota if a test set one, else the provider's."""
        with self.quota_lock:
            return self.account_quotas.get((provider, account_id or ""), self.quotas[provider])


WORLD = web.AppKey("world", World)


@dataclass
class Incoming:
    """A received request: already recorded, body parsed once."""

    request: web.Request
    provider: str
    position: int
    body: Any  # parsed JSON, or None
    form: dict[str, str] | None
    json_error: bool  # a JSON content type whose body did not parse

    @property
    def world(self) -> World:
        return self.request.app[WORLD]

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    def record_status(self, status: int) -> None:
        self.world.recorder.set_status(self.provider, self.position, status)


async def receive(request: web.Request, provider: str) -> Incoming:
    """Read, parse and record a request."""
    raw = await request.read()
    body, form, json_error = _parse_body(request.content_type, raw)
    record = Recorded(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=Recorded.make_headers(request.headers),
        json=body,
        form=form,
    )
    position = request.app[WORLD].recorder.add(provider, record)
    return Incoming(request, provider, position, body, form, json_error)


def _parse_body(content_type: str, raw: bytes) -> tuple[Any, dict[str, str] | None, bool]:
    if content_type == "application/x-www-form-urlencoded":
        return None, dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)), False
    if not raw:
        return None, None, False
    try:
        return json.loads(raw), None, False
    except (ValueError, UnicodeDecodeError):
        return None, None, True


def json_response(incoming: Incoming, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    incoming.record_status(status)
    return web.json_response(body, status=status, headers=headers)


def sse_bytes(event: dict[str, Any]) -> bytes:
    """One SSE event: ``event:`` line named after the payload's ``type``."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class SseStream:
    """Writes one SSE response; use as ``async with SseStream(...) as stream``.

    Counts the stream as open while inside the block and, on exit, as
    cancelled when the client went away before ``finished`` was set.
    """

    def __init__(self, incoming: Incoming, headers: dict[str, str], *, delay: float = 0.0) -> None:
        self.incoming = incoming
        self.response = web.StreamResponse(status=200, headers=headers)
        self.response.content_type = "text/event-stream"
        self.delay = delay
        self.finished = False
        self.dropped = False
        self.client_gone = False
        self._sent = 0

    async def __aenter__(self) -> SseStream:
        await self.response.prepare(self.incoming.request)
        self.incoming.record_status(200)
        self.incoming.world.recorder.stream_opened(self.incoming.provider)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        # A CancelledError here means the client disconnected (handler
        # cancellation) unless we dropped the connection ourselves.
        if exc_type is not None and issubclass(exc_type, (asyncio.CancelledError, ConnectionResetError)):
            self.client_gone = not self.dropped
        cancelled = self.client_gone and not self.finished
        self.incoming.world.recorder.stream_closed(self.incoming.provider, cancelled=cancelled)
        # Swallow only the reset: nothing is left to send.  CancelledError must propagate.
        return exc_type is not None and issubclass(exc_type, ConnectionResetError)

    async def send(self, event: dict[str, Any]) -> None:
        """Write one event, after the ``slow`` delay for every event but the first."""
        if self._sent and self.delay:
            await asyncio.sleep(self.delay)
        transport = self.incoming.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("client went away")
        await self.response.write(sse_bytes(event))
        self._sent += 1

    async def send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            await self.send(event)

    def drop(self) -> None:
        """Cut the TCP connection with no terminal event, like a dying upstream."""
        self.dropped = True
        transport = self.incoming.request.transport
        if transport is not None:
            transport.abort()
