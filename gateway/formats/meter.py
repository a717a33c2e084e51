"""Reading token usage and the end of a stream from upstream events. Pure.

The relay feeds every upstream event here whatever the client's format, so
usage is recorded from what the upstream reported (PROTOCOLS.md §6.9).
"""
from __future__ import annotations

from typing import Any

from gateway.formats.sse import Event
from gateway.translate.mapping import Usage

_TERMINAL = {
    "anthropic": {"message_stop", "error"},
    "responses": {"response.completed", "response.incomplete", "response.failed", "error"},
}


class UsageMeter:
    """Watches one upstream stream: usage, whether it ended, and any in-stream error."""

    def __init__(self, upstream_format: str) -> None:
        self.format = upstream_format
        self.usage = Usage()
        self.terminal = False
        self.error_type = ""
        self.last_sequence = -1

    def feed(self, event: Event) -> None:
        name = event.event
        if self.format == "anthropic":
            self._feed_anthropic(name, event)
        else:
            self._feed_responses(name, event)
        if name in _TERMINAL[self.format]:
            self.terminal = True

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
            self.last_sequence = int((event.object() or {}).get("sequence_number", self.last_sequence))

    def body(self, obj: dict[str, Any]) -> None:
        """Read usage from a whole (non-stream) upstream body."""
        if self.format == "anthropic":
            self.usage = Usage.from_anthropic(obj.get("usage"))
        else:
            self.usage = Usage.from_responses(obj.get("usage"))
        self.terminal = True

