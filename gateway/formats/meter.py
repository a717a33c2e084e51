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
