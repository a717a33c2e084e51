"""Responses client to the Codex upstream: the same format, but tool names over
64 characters were shortened on the way up (codex_body.prepare, tool_names.py), so calls in
the reply must carry the client's names again.

Only when something was renamed does this re-serialise events; otherwise the
relay forwards the upstream bytes untouched.
"""
from __future__ import annotations

from typing import Any

from gateway.formats.sse import Event, named_event
from gateway.formats.stream_errors import responses_error
from gateway.translate.tool_names import renamed_back, with_client_names

_TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


def request(body: dict[str, Any], target: Any) -> dict[str, Any]:
    return {**body, "model": target.model}


def response(obj: dict[str, Any], client_body: dict[str, Any], model: str) -> dict[str, Any]:
    reverse = renamed_back(client_body)
    return with_client_names(obj, reverse) if reverse else obj


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


def stream(client_body: dict[str, Any], model: str) -> RenamingStream | None:
    """A renaming translator when the request had over-long tool names; None to pass bytes through."""
    reverse = renamed_back(client_body)
    return RenamingStream(reverse) if reverse else None
