"""Server-sent events: an incremental parser and the writers for each client format.

The parser is fed raw network chunks, which may end anywhere (mid-line, mid
UTF-8 sequence), and yields whole events. Writers return bytes ready to send.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Event:
    """One SSE event: ``event`` is the ``event:`` field ("" when absent)."""

    event: str
    data: str

    def json(self) -> Any:
        return _loads(self.data)

    def object(self) -> dict[str, Any] | None:
        """The data as a JSON object, or None when it is not one (empty, malformed, a list)."""
        if not self.data:
            return None
        try:
            data = _loads(self.data)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


class SSEParser:
    """Buffers bytes until a blank line and yields each complete event.

    >>> p = SSEParser(); list(p.feed(b'event: ping\\ndata: {"type"'))
    []
    >>> [e.event for e in p.feed(b': "ping"}\\n\\n')]
    ['ping']

    Each byte is scanned once: a chunk of fifty events costs fifty finds, not
    fifty scans of what is left of the buffer (the relay's profile showed the
    old rescanning as its largest cost on streams).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._pos = 0  # how much of _buffer feed() has consumed

    def feed(self, chunk: bytes) -> Iterator[Event]:
        """Each complete event, parsed as it is reached: a consumer that stops early (the relay
        vetting a stream's opening) pays only for the events it read; the rest stay buffered."""
        buffer, start = self._take(chunk), 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            raw, start = buffer[start:end], end + 2
            # What is consumed is marked by an offset, not by copying the rest of the buffer.
            self._buffer, self._pos = buffer, start
            event = parse_block(raw) if raw else None
            if event is not None:
                yield event

    def blocks(self, chunk: bytes) -> list[bytes]:
        """The complete raw events fed so far, line ends normalised to ``\\n``, unparsed.

        The relay meters a same-format stream from these, parsing only the few
        events that carry usage (see ``block_name``).
        """
        buffer = self._take(chunk)
        out: list[bytes] = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            if end > start:
                out.append(buffer[start:end])
            start = end + 2
        self._buffer = buffer[start:] if start else buffer
        return out

    def complete(self, chunk: bytes) -> bytes:
        """Every complete event fed so far as one string (``\\n`` line ends, ending on a blank line), unsplit.

        What the relay meters a same-format stream from: ``UsageMeter.feed_complete``
        finds the few events it reads by name, so the text deltas cost no Python per event.
        """
        buffer = self._take(chunk)
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._buffer = buffer
            return b""
        self._buffer = buffer[end + 2:]
        return buffer[:end + 2]

    def _take(self, chunk: bytes) -> bytes:
        pending = self._buffer[self._pos:] if self._pos else self._buffer
        buffer = pending + chunk if pending else chunk
        if b"\r" in buffer:
            # CRLF or bare CR line ends (the spec allows both); a CR that ends the chunk
            # may be the first half of a CRLF, so it waits for the next chunk.
            held = b"\r" if buffer.endswith(b"\r") else b""
            buffer = buffer[:len(buffer) - len(held)].replace(b"\r\n", b"\n").replace(b"\r", b"\n") + held
        self._buffer, self._pos = buffer, 0
        return buffer

    @property
    def at_boundary(self) -> bool:
        """True when everything fed so far ended on an event boundary."""
        return self._pos >= len(self._buffer)

    def finish(self) -> Iterator[Event]:
        """Yield a last event that the peer did not terminate with a blank line."""
        raw, self._buffer, self._pos = self._buffer[self._pos:], b"", 0
        if raw.strip():
            event = parse_block(raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
            if event is not None:
                yield event


def block_name(raw: bytes) -> str:
    """The ``event:`` name of a raw block from ``SSEParser.blocks`` ("" when it has none), without parsing it."""
    if raw.startswith(b"event:"):
        end = raw.find(b"\n")
        return raw[6:end if end >= 0 else len(raw)].strip().decode("utf-8", errors="replace")
    event = parse_block(raw)  # comments or fields in an unusual order: the general parser decides
    return event.event if event is not None else ""


def parse_block(raw: bytes) -> Event | None:
    """One raw event block (``\\n`` line ends, no blank line inside) as an Event; None for comments only."""
    text = raw.decode("utf-8", errors="replace")
    # Fast path: the one "event:" and one "data:" line that Anthropic and Responses streams send.
    if text.startswith("event: "):
        name, _, rest = text.partition("\n")
        if rest.startswith("data: ") and "\n" not in rest:
            return Event(name[7:], rest[6:])
    return _parse_event(text)


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


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


# The JSON codec for events; gateway.fastjson swaps in orjson (this layer imports only the stdlib).
_loads: Callable[[str], Any] = json.loads
_dumps: Callable[[Any], bytes] = _std_dumps


def use_json(loads: Callable[[str], Any], dumps: Callable[[Any], bytes]) -> None:
    """Parse and write events with ``loads``/``dumps``, which must behave as the stdlib's (compact, UTF-8)."""
    global _loads, _dumps
    _loads, _dumps = loads, dumps


def named_event(obj: dict[str, Any]) -> bytes:
    """``event: <type>`` + ``data:``, as Anthropic and Responses streams send."""
    return b"event: " + str(obj["type"]).encode() + b"\ndata: " + _dumps(obj) + b"\n\n"


def data_event(obj: Any) -> bytes:
    """A bare ``data:`` event, as Chat Completions streams send."""
    return b"data: " + _dumps(obj) + b"\n\n"


DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": ping\n\n"
