"""The conversation one Responses WebSocket connection carries (PROTOCOLS.md §3.7). Pure.

Over a WebSocket, Codex CLI sends ``previous_response_id`` of the last
response on the connection and only the input items that came after it. The
upstreams here are stateless (Codex over HTTP SSE with ``store: false``,
Claude through the Messages translation), so the gateway keeps, per
connection, the last request's full input and the output items of its
response, and rebuilds the full input before the upstream call::

    chain = ResponseChain()
    body = chain.expand({"type": "response.create", "model": "gpt-5.5", "input": [u1]})
    chain.remember(body, "resp_1", [o1])           # after response.completed
    chain.expand({"type": "response.create", "model": "gpt-5.5",
                  "previous_response_id": "resp_1", "input": [u2]})["input"]   # [u1, o1, u2]

A ``previous_response_id`` that is not the connection's last response raises
PreviousResponseNotFoundError; the client is told ``previous_response_not_found``
and resends the whole conversation on a new connection, as Codex does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Message fields that steer the WebSocket exchange itself, never sent upstream.
CONTROL_FIELDS = ("type", "previous_response_id", "generate")


class PreviousResponseNotFoundError(Exception):
    """``previous_response_id`` names no response this connection remembers."""

    def __init__(self, response_id: str) -> None:
        self.message = (f"Previous response with id {response_id!r} not found on this connection; "
                        "send the full input, or reconnect.")
        super().__init__(self.message)


@dataclass(frozen=True)
class _Turn:
    response_id: str
    input: list[Any]  # the full input of the request, as rebuilt
    output: list[Any]  # the output items of its response


def input_items(value: Any) -> list[Any]:
    """The input of a Responses request as a list of items (a plain string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if isinstance(value, list):
        return list(value)
    return [value]  # malformed: left for the translators to refuse in the client's format


class ResponseChain:
    """The last completed response of a connection, to resolve the next ``previous_response_id``."""

    def __init__(self) -> None:
        self._last: _Turn | None = None

    def expand(self, message: dict[str, Any]) -> dict[str, Any]:
        """A ``response.create`` message as the full request body for the upstream: control fields
        dropped, ``stream`` on, and the input rebuilt when it continues the last response."""
        body = {k: v for k, v in message.items() if k not in CONTROL_FIELDS}
        body["stream"] = True
        previous = message.get("previous_response_id")
        if previous:
            last = self._last
            if last is None or last.response_id != previous:
                raise PreviousResponseNotFoundError(str(previous))
            body["input"] = [*last.input, *last.output, *input_items(message.get("input"))]
        return body

    def remember(self, body: dict[str, Any], response_id: str, output: list[Any]) -> None:
        """Record a completed response of ``body`` (as expand() returned it) and its output items."""
        self._last = _Turn(response_id, input_items(body.get("input")), list(output))

    def forget(self) -> None:
        self._last = None

    @property
    def last_response_id(self) -> str | None:
        return self._last.response_id if self._last else None
