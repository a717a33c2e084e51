"""What the stream translators fed by the Codex upstream share (``responses_to_*_stream.py``). Pure.

Both consume Responses events (PROTOCOLS.md §3.5); subclasses implement
``_on_event()`` and ``_error()``, and say how a cut stream is reported.
"""
from __future__ import annotations

from typing import Any

from gateway.formats.sse import Event


class FromResponsesStream:
    # (error type, message, ...) passed to _error() when the upstream stops before a terminal event.
    STREAM_CUT: tuple[Any, ...] = ("api_error", "upstream stream ended early")

    def __init__(self) -> None:
        self._done = False

    @property
    def done(self) -> bool:
        """True once the client stream was ended (a terminal event or an error); later events are ignored."""
        return self._done

    def feed(self, event: Event) -> list[bytes]:
        data = None if self._done else event.object()
        if data is None:
            return []
        data.setdefault("type", event.event)
        return self._on_event(data)

    def finish(self) -> list[bytes]:
        """Call when the upstream stream ends; reports a stream cut short."""
        return [] if self._done else self._error(*self.STREAM_CUT)

    def fail(self, error_type: str, message: str) -> list[bytes]:
        """End the client stream with an error (e.g. the upstream connection broke)."""
        return [] if self._done else self._error(error_type, message)

    def _on_event(self, data: dict[str, Any]) -> list[bytes]:
        raise NotImplementedError

    def _error(self, error_type: str, message: str, *details: Any) -> list[bytes]:
        raise NotImplementedError
