"""What the stream translators fed by a Claude upstream share (``anthropic_to_*_stream.py``). Pure.

Both consume Anthropic Messages events (PROTOCOLS.md §1.8) and differ only in
what they emit, so the dispatch by event type and the end-of-stream rule live
here; subclasses implement one ``_on_*`` method per event and ``fail()``.
"""
from __future__ import annotations

from typing import Any

from gateway.formats.sse import Event

# Upstream event type -> handler method name.
HANDLERS = {
    "message_start": "_on_message_start",
    "content_block_start": "_on_block_start",
    "content_block_delta": "_on_block_delta",
    "content_block_stop": "_on_block_stop",
    "message_delta": "_on_message_delta",
    "message_stop": "_on_message_stop",
    "error": "_on_error",
}


class FromAnthropicStream:
    """``feed()`` dispatches each upstream event; ``done`` turns true once the client stream ended."""

    UNFINISHED = "upstream stream ended before the message was complete"

    def __init__(self) -> None:
        self.done = False

    def feed(self, event: Event) -> list[bytes]:
        """Client SSE bytes for one upstream event; unknown events and ``ping`` give none."""
        data = None if self.done else event.object()
        if data is None:
            return []
        handler = HANDLERS.get(data.get("type") or event.event)
        return getattr(self, handler)(data) if handler else []

    def finish(self) -> list[bytes]:
        """At upstream EOF: nothing if the stream ended properly, else an error ending.

        A stream cut after ``message_delta`` lost only ``message_stop``: it is completed.
        """
        if self.done:
            return []
        if self._stop_seen():
            return self._on_message_stop({})
        return self.fail("api_error", self.UNFINISHED)

    def fail(self, error_type: str, message: str) -> list[bytes]:
        raise NotImplementedError

    def _stop_seen(self) -> bool:
        raise NotImplementedError

    def _on_message_stop(self, data: dict[str, Any]) -> list[bytes]:
        raise NotImplementedError
