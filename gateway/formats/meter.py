"""Reading token usage and the end of a stream from upstream events. Pure.

The relay feeds every upstream event here whatever the client's format, so
usage is recorded from what the upstream reported (PROTOCOLS.md §6.9). A
same-format stream is fed as raw blocks (``feed_blocks``): only the few events
that carry usage or end the stream are parsed, the text deltas never are.
"""
from __future__ import annotations

from typing import Any

from gateway.formats.sse import Event, block_name, parse_block
from gateway.translate.mapping import Usage

_TERMINAL = {
    "anthropic": {"message_stop", "error"},
    "responses": {"response.completed", "response.incomplete", "response.failed", "error"},
}
# The events feed() reads anything from; every other event only moves last_sequence (Responses).
_READ = {
    "anthropic": frozenset({"message_start", "message_delta", "message_stop", "error"}),
    "responses": frozenset({"response.completed", "response.incomplete", "response.failed", "error"}),
}


_NEEDLES = {fmt: tuple(b"event: " + name.encode() + b"\n" for name in names) for fmt, names in _READ.items()}


def _block_start(events: bytes, at: int) -> int:
    start = events.rfind(b"\n\n", 0, at)
    return 0 if start < 0 else start + 2


def _block_end(events: bytes, at: int) -> int:
    end = events.find(b"\n\n", at)
    return len(events) if end < 0 else end


class UsageMeter:
    """Watches one upstream stream: usage, whether it ended, and any in-stream error."""

    def __init__(self, upstream_format: str) -> None:
        self.format = upstream_format
        self.usage = Usage()
        self.terminal = False
        self.error_type = ""
        self._last_sequence = -1
        # The latest event that carries a sequence number, parsed only if last_sequence is asked for
        # (to number an error event after a failure): most streams never need it.
        self._unread: Event | bytes | None = None

    def feed(self, event: Event) -> None:
        name = event.event
        if self.format == "anthropic":
            self._feed_anthropic(name, event)
        else:
            self._feed_responses(name, event)
        if name in _TERMINAL[self.format]:
            self.terminal = True

    def feed_blocks(self, blocks: list[bytes]) -> None:
        """Raw event blocks from ``SSEParser.blocks``: parse only those ``feed`` reads something from."""
        read = _READ[self.format]
        responses = self.format == "responses"
        for raw in blocks:
            if block_name(raw) in read:
                event = parse_block(raw)
                if event is not None:
                    self.feed(event)
            elif responses and b'"sequence_number"' in raw:
                self._unread = raw

    def feed_complete(self, events: bytes) -> None:
        """Complete events as one string (``SSEParser.complete``): find those ``feed`` reads by name, parse only them."""
        if not events:
            return
        if events.count(b"event:") != events.count(b"event: "):  # an unusual spelling: the careful path
            self.feed_blocks(events.split(b"\n\n"))
            return
        found: list[int] = []
        for needle in _NEEDLES[self.format]:
            at = events.find(needle)
            while at >= 0:
                if at == 0 or events[at - 1] == 10:  # at a line start: a field, not text inside data
                    found.append(at)
                at = events.find(needle, at + 1)
        for at in sorted(found):
            event = parse_block(events[_block_start(events, at):_block_end(events, at)])
            if event is not None:
                self.feed(event)
        if self.format == "responses":
            # feed() took the sequence number of every event it read except errors (see _feed_responses).
            numbered = [at for at in found if not events.startswith(b"event: error\n", at)]
            self._note_last_sequenced(events, max(numbered, default=-1))

    def _note_last_sequenced(self, events: bytes, last_read: int) -> None:
        """Keep the latest event with a sequence number for last_sequence, unless feed() read it or a later one."""
        at = events.rfind(b'"sequence_number"')
        while at >= 0:
            start = _block_start(events, at)
            if not events.startswith(b"event: error\n", start):  # errors never moved it
                if start > last_read:
                    self._unread = events[start:_block_end(events, at)]
                return
            at = events.rfind(b'"sequence_number"', 0, start)

    @property
    def last_sequence(self) -> int:
        """The sequence number of the latest Responses event that had one (-1: none)."""
        if self._unread is not None:
            unread, self._unread = self._unread, None
            event = parse_block(unread) if isinstance(unread, bytes) else unread
            self._last_sequence = _sequence_number(event, self._last_sequence)
        return self._last_sequence

    @last_sequence.setter
    def last_sequence(self, value: int) -> None:
        self._unread, self._last_sequence = None, value

    def _feed_anthropic(self, name: str, event: Event) -> None:
        if name == "message_start":
            self.usage = Usage.from_anthropic(((event.object() or {}).get("message") or {}).get("usage"))
        elif name == "message_delta":
            self.usage.update_anthropic((event.object() or {}).get("usage"))
        elif name == "error":
            self.error_type = str(((event.object() or {}).get("error") or {}).get("type") or "error")

    def _feed_responses(self, name: str, event: Event) -> None:
        if name in ("response.completed", "response.incomplete", "response.failed"):
            data = (event.object() or {})
            response = data.get("response") or {}
            self.usage = Usage.from_responses(response.get("usage"))
            if name == "response.failed":
                self.error_type = str((response.get("error") or {}).get("code") or "failed")
            self.last_sequence = int(data.get("sequence_number", self.last_sequence))
        elif name == "error":
            self.error_type = str((event.object() or {}).get("code") or "error")
        elif '"sequence_number"' in event.data:
            self._unread = event

    def body(self, obj: dict[str, Any]) -> None:
        """Read usage from a whole (non-stream) upstream body."""
        if self.format == "anthropic":
            self.usage = Usage.from_anthropic(obj.get("usage"))
        else:
            self.usage = Usage.from_responses(obj.get("usage"))
        self.terminal = True


def _sequence_number(event: Event | None, default: int) -> int:
    data = event.object() if event is not None else None
    try:
        return int((data or {}).get("sequence_number", default))
    except (TypeError, ValueError):
        return default
