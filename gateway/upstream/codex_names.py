"""Responses client to the Codex upstream: the same format, but tool names over
64 characters were shortened on the way up (codex_body.prepare), so calls in
the reply must carry the client's names again.

Only when something was renamed does this re-serialise events; otherwise the
relay forwards the upstream bytes untouched.
"""
from __future__ import annotations

from typing import Any

from gateway.formats.sse import Event, named_event
from gateway.formats.stream_errors import responses_error
from gateway.upstream.codex_body import tool_name_map

_CALL_TYPES = ("function_call", "custom_tool_call")
_TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


def _reverse_map(client_body: dict[str, Any]) -> dict[str, str]:
    return {short: name for name, short in tool_name_map(client_body).items() if short != name}


def _restore(obj: Any, reverse: dict[str, str]) -> Any:
    """``obj`` with every call item's upstream name replaced by the client's name."""
    if isinstance(obj, list):
        return [_restore(v, reverse) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _restore(v, reverse) for k, v in obj.items()}
    if out.get("type") in _CALL_TYPES and out.get("name") in reverse:
        out["name"] = reverse[out["name"]]
    return out


def request(body: dict[str, Any], target: Any) -> dict[str, Any]:
    return {**body, "model": target.model}


def response(obj: dict[str, Any], client_body: dict[str, Any], model: str) -> dict[str, Any]:
    reverse = _reverse_map(client_body)
    return _restore(obj, reverse) if reverse else obj


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
        return [named_event(_restore(data, self.reverse))]

    def finish(self) -> list[bytes]:
        return [] if self.done else self.fail("server_error", "upstream stream ended early")

    def fail(self, error_type: str, message: str) -> list[bytes]:
        self.done = True
        return responses_error(error_type, message, self.next_sequence)


def stream(client_body: dict[str, Any], model: str) -> RenamingStream | None:
    """A renaming translator when the request had over-long tool names; None to pass bytes through."""
    reverse = _reverse_map(client_body)
    return RenamingStream(reverse) if reverse else None
