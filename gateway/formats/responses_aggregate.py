"""Collect a Responses SSE stream into the final Response object (PROTOCOLS.md §5.7).

The Codex backend only streams; a ``stream: false`` client gets the
aggregate, translated to its format afterwards. Feed every event, then call
``result()``::

    agg = ResponseAggregator()
    for event in events:        # response.created ... response.completed
        agg.feed(event)
    agg.result()   # {"id": "resp_01", "status": "completed", "output": [...], "usage": {...}}

Errors::

    UpstreamStreamError         status 502 for response.failed or an error event,
                                408 when the stream ends before a terminal event
"""
from __future__ import annotations

from typing import Any

from gateway.formats.sse import Event

_TERMINAL = ("response.completed", "response.incomplete")
_ID_PREFIXES = {"message": "msg", "reasoning": "rs", "function_call": "fc", "custom_tool_call": "ctc"}


class UpstreamStreamError(Exception):
    """The upstream stream failed or ended early; ``status`` is for the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ResponseAggregator:
    """Keeps finished output items and the terminal response; see the module docstring."""

    def __init__(self) -> None:
        self._items: dict[int, dict[str, Any]] = {}
        self._response: dict[str, Any] | None = None
        self._error: UpstreamStreamError | None = None

    def feed(self, event: Event) -> None:
        if self._response is not None or self._error is not None:
            return
        data = event.object()
        if data is None:
            return
        kind = data.get("type") or event.event
        if kind == "response.output_item.done" and isinstance(data.get("item"), dict):
            index = data.get("output_index")
            self._items[index if isinstance(index, int) else len(self._items)] = data["item"]
        elif kind in _TERMINAL:
            self._response = dict(data.get("response") or {})
        elif kind == "response.failed":
            error = (data.get("response") or {}).get("error") or {}
            self._error = UpstreamStreamError(502, str(error.get("code") or "server_error"),
                                              str(error.get("message") or "upstream request failed"))
        elif kind == "error":
            self._error = UpstreamStreamError(502, str(data.get("code") or "server_error"),
                                              str(data.get("message") or "upstream error"))

    def result(self) -> dict[str, Any]:
        """Return the final Response object, or raise UpstreamStreamError."""
        if self._error is not None:
            raise self._error
        if self._response is None:
            raise UpstreamStreamError(408, "stream_incomplete", "upstream stream ended early")
        response = self._response
        kept = [self._items[i] for i in sorted(self._items)]
        output = response.get("output") or kept
        response["output"] = [self._with_id(item, i, response.get("id")) for i, item in enumerate(output)]
        return response

    def _with_id(self, item: dict[str, Any], position: int, response_id: Any) -> dict[str, Any]:
        if item.get("id"):
            return item
        kept = self._items.get(position) or {}
        if kept.get("id") and kept.get("type") == item.get("type"):
            return {**item, "id": kept["id"]}
        prefix = _ID_PREFIXES.get(str(item.get("type")), "item")
        return {**item, "id": f"{prefix}_{response_id or 'resp'}_{position}"}
