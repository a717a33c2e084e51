"""Server-sent events: an incremental parser and the writers for each client format.

The parser is fed raw network chunks, which may end anywhere (mid-line, mid
UTF-8 sequence), and yields whole events. Writers return bytes ready to send.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator


@dataclass(frozen=True)
class Event:
    """One SSE event: ``event`` is the ``event:`` field ("" when absent)."""

    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)

    def object(self) -> dict[str, Any] | None:
        """The data as a JSON object, or None when it is not one (empty, malformed, a list)."""
        if not self.data:
            return None
        try:
            data = json.loads(self.data)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


class SSEParser:
    """Buffers bytes until a blank line and yields each complete event.

    >>> p = SSEParser(); list(p.feed(b'event: ping\\ndata: {"type"'))
    []
    >>> [e.event for e in p.feed(b': "ping"}\\n\\n')]
    ['ping']
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[Event]:
        self._buffer += chunk
        while True:
            end, sep_len = _find_event_end(self._buffer)
            if end < 0:
                return
            raw, self._buffer = self._buffer[:end], self._buffer[end + sep_len:]
            event = _parse_event(raw.decode("utf-8", errors="replace"))
            if event is not None:
                yield event

    @property
    def at_boundary(self) -> bool:
        """True when everything fed so far ended on an event boundary."""
        return not self._buffer

    def finish(self) -> Iterator[Event]:
        """Yield a last event that the peer did not terminate with a blank line."""
        raw, self._buffer = self._buffer, b""
        if raw.strip():
            event = _parse_event(raw.decode("utf-8", errors="replace"))
            if event is not None:
                yield event


def _find_event_end(buffer: bytes) -> tuple[int, int]:
    best, best_len = -1, 0
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        i = buffer.find(sep)
        if i >= 0 and (best < 0 or i < best):
            best, best_len = i, len(sep)
    return best, best_len


def _parse_event(raw: str) -> Event | None:
    name = ""
    data: list[str] = []
    for line in raw.splitlines():
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if not data and not name:
        return None
    return Event(name, "\n".join(data))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def named_event(obj: dict[str, Any]) -> bytes:
    """``event: <type>`` + ``data:``, as Anthropic and Responses streams send."""
    return f"event: {obj['type']}\ndata: {_dumps(obj)}\n\n".encode()


def data_event(obj: Any) -> bytes:
    """A bare ``data:`` event, as Chat Completions streams send."""
    return f"data: {_dumps(obj)}\n\n".encode()


DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": ping\n\n"
