"""Codex (Responses) SSE -> Responses SSE, for a Responses client whose tool names were shortened. Pure.

The format is the same, so each event is only re-serialised with the client's
names in its call items (``tool_names.with_client_names``)::

    data: {"type":"response.output_item.done","item":{"type":"function_call","name":"mcp__search",...}}
    -> data: {"type":"response.output_item.done","item":{"type":"function_call",
              "name":"mcp__github_enterprise_server_for_the_platform_team__search",...}}

``responses_to_responses.stream()`` makes one only when a name was shortened;
otherwise the relay forwards the upstream bytes untouched.
"""
from __future__ import annotations

from gateway.formats.sse import Event, named_event
from gateway.formats.stream_errors import responses_error
from gateway.translate.tool_names import with_client_names

_TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


class RenamingStream:
    """Re-emits each upstream event with the client's tool names."""

    def __init__(self, reverse: dict[str, str]) -> None:
        self.reverse = reverse
        self.done = False
        self.next_sequence = 0

    def feed(self, event: Event) -> list[bytes]:
        data = event.object()
        if data is None or "type" not in data:
            return []
        self.next_sequence = int(data.get("sequence_number", self.next_sequence - 1)) + 1
        self.done = self.done or data["type"] in _TERMINAL
        return [named_event(with_client_names(data, self.reverse))]

    def finish(self) -> list[bytes]:
        return [] if self.done else self.fail("server_error", "upstream stream ended early")

    def fail(self, error_type: str, message: str) -> list[bytes]:
        self.done = True
        return responses_error(error_type, message, self.next_sequence)
