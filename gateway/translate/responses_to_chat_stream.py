"""Codex (Responses) SSE events -> Chat Completions chunks: PROTOCOLS.md §6.6 and §2.5.

One instance per request. Feed it each upstream event; it returns the bytes
to send. A Codex function call such as::

    event: response.output_item.added
    data: {"type":"response.output_item.added","output_index":1,
           "item":{"type":"function_call","id":"fc_1","call_id":"call_a1","name":"shell","arguments":""}}

    event: response.function_call_arguments.delta
    data: {"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":1,"delta":"{\\"cmd\\":"}

becomes::

    data: {..."choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a1","type":"function",
           "function":{"name":"shell","arguments":""}}]},"finish_reason":null}]}

    data: {..."choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"cmd\\":"}}]},...}]}

The stream ends with a finish chunk, the usage chunk when the client asked
for ``stream_options.include_usage``, and ``data: [DONE]``; or with an error
chunk and ``[DONE]`` when the upstream fails or stops early.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from gateway.formats.sse import DONE, data_event
from gateway.translate.from_responses_stream import FromResponsesStream
from gateway.translate.mapping import (
    Usage,
    responses_to_chat_finish,
)
from gateway.translate.tool_names import chat_tool_names, restoring_tool_names

_CALL_TYPES = ("function_call", "custom_tool_call")

# Responses error codes -> Chat error ``type`` (§2.6); anything else is server_error.
_ERROR_TYPES = {
    "rate_limit_exceeded": "rate_limit_exceeded",
    "insufficient_quota": "insufficient_quota",
    "usage_not_included": "insufficient_quota",
    "context_length_exceeded": "invalid_request_error",
    "invalid_prompt": "invalid_request_error",
}


def chat_id(response_id: Any) -> str:
    """``resp_01`` -> ``chatcmpl-resp_01`` (a fresh id when there is none)."""
    return f"chatcmpl-{response_id}" if response_id else f"chatcmpl-{uuid.uuid4().hex[:24]}"


def chat_finish_reason(status: str | None, reason: str | None, has_tool_call: bool) -> str:
    """§6.8, with any ``incomplete`` response reported as cut short, never as tool_calls."""
    if status == "incomplete":
        return "content_filter" if reason == "content_filter" else "length"
    return responses_to_chat_finish(status, reason, has_tool_call)


@dataclass
class _Call:
    index: int
    kind: str  # "function" or "custom"
    streamed: bool = False  # argument deltas were seen


class StreamTranslator(FromResponsesStream):
    """Codex SSE events -> Chat chunk bytes. See the module docstring."""

    STREAM_CUT = ("server_error", "upstream stream ended early", "stream_incomplete")

    def __init__(self, client_body: dict[str, Any], model: str) -> None:
        super().__init__()
        self._model = model
        self._include_usage = bool((client_body.get("stream_options") or {}).get("include_usage"))
        self._names = restoring_tool_names(chat_tool_names(client_body))
        self._id = chat_id(None)
        self._created = int(time.time())
        self._started = False
        self._reasoning_seen = False
        self._calls_by_item: dict[str, _Call] = {}
        self._calls_by_index: dict[int, _Call] = {}
        self._call_count = 0
        self._texted_items: set[str] = set()  # message items whose text arrived as deltas

    def _on_event(self, data: dict[str, Any]) -> list[bytes]:
        handler = _HANDLERS.get(str(data.get("type")))
        return handler(self, data) if handler else []

    # -- event handlers ------------------------------------------------------

    def _on_created(self, data: dict[str, Any]) -> list[bytes]:
        resp = data.get("response") or {}
        if not self._started:
            self._id = chat_id(resp.get("id"))
            self._created = int(resp.get("created_at") or self._created)
        return self._start()

    def _on_text(self, data: dict[str, Any]) -> list[bytes]:
        delta = data.get("delta") or ""
        key = "refusal" if data.get("type") == "response.refusal.delta" else "content"
        if not delta:
            return []
        self._texted_items.add(str(data.get("item_id")))
        return self._start() + [self._chunk({key: delta})]

    def _on_summary_part(self, data: dict[str, Any]) -> list[bytes]:
        # Separate summary parts the way the non-stream reply joins them.
        return self._start() + [self._chunk({"reasoning_content": "\n\n"})] if self._reasoning_seen else []

    def _on_summary_delta(self, data: dict[str, Any]) -> list[bytes]:
        delta = data.get("delta") or ""
        if not delta:
            return []
        self._reasoning_seen = True
        return self._start() + [self._chunk({"reasoning_content": delta})]

    def _on_item_added(self, data: dict[str, Any]) -> list[bytes]:
        item = data.get("item") or {}
        if item.get("type") not in _CALL_TYPES:
            return []
        call = self._register(item, data.get("output_index"))
        return self._start() + [self._head(call, item)]

    def _on_arguments_delta(self, data: dict[str, Any]) -> list[bytes]:
        call = self._lookup(data.get("item_id"), data.get("output_index"))
        delta = data.get("delta") or ""
        if call is None or not delta:
            return []
        call.streamed = True
        return [self._chunk({"tool_calls": [self._args(call, delta)]})]

    def _on_item_done(self, data: dict[str, Any]) -> list[bytes]:
        item = data.get("item") or {}
        if item.get("type") == "message" and str(item.get("id")) not in self._texted_items:
            return self._message_text(item)
        if item.get("type") not in _CALL_TYPES:
            return []
        out = self._start()
        call = self._lookup(item.get("id"), data.get("output_index"))
        if call is None:  # no output_item.added was seen for it
            call = self._register(item, data.get("output_index"))
            out.append(self._head(call, item))
        full = item.get("arguments") if call.kind == "function" else item.get("input")
        if not call.streamed and full:
            call.streamed = True
            out.append(self._chunk({"tool_calls": [self._args(call, full)]}))
        return out

    def _on_terminal(self, data: dict[str, Any]) -> list[bytes]:
        resp = data.get("response") or {}
        status = resp.get("status") or ("incomplete" if data.get("type") == "response.incomplete" else "completed")
        reason = (resp.get("incomplete_details") or {}).get("reason")
        has_call = self._call_count > 0 or any(
            (i or {}).get("type") in _CALL_TYPES for i in resp.get("output") or [])
        out = self._start()
        out.append(self._chunk({}, chat_finish_reason(status, reason, has_call)))
        if self._include_usage:
            usage = Usage.from_responses(resp.get("usage")).to_chat()
            out.append(data_event({**self._shell(), "choices": [], "usage": usage}))
        out.append(DONE)
        self._done = True
        return out

    def _on_failed(self, data: dict[str, Any]) -> list[bytes]:
        error = (data.get("response") or {}).get("error") or {}
        code = error.get("code") or "server_error"
        return self._error(_ERROR_TYPES.get(code, "server_error"), error.get("message") or "upstream request failed", code)

    def _on_error(self, data: dict[str, Any]) -> list[bytes]:
        code = data.get("code") or "server_error"
        return self._error(_ERROR_TYPES.get(code, "server_error"), data.get("message") or "upstream error", code)

    def _message_text(self, item: dict[str, Any]) -> list[bytes]:
        """Text that only arrived in ``output_item.done`` (no deltas were seen)."""
        out: list[bytes] = []
        for part in item.get("content") or []:
            key, text = ("content", part.get("text")) if part.get("type") == "output_text" else (
                "refusal", part.get("refusal"))
            if text:
                out += self._start() + [self._chunk({key: text})]
        return out

    # -- chunk builders -------------------------------------------------------

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _register(self, item: dict[str, Any], output_index: Any) -> _Call:
        kind = "custom" if item.get("type") == "custom_tool_call" else "function"
        call = _Call(index=self._call_count, kind=kind)
        self._call_count += 1
        if isinstance(output_index, int):
            self._calls_by_index[output_index] = call
        if item.get("id"):
            self._calls_by_item[str(item["id"])] = call
        return call

    def _lookup(self, item_id: Any, output_index: Any) -> _Call | None:
        return self._calls_by_item.get(str(item_id)) or self._calls_by_index.get(output_index)

    def _head(self, call: _Call, item: dict[str, Any]) -> bytes:
        """A call's first delta: index, id, type and name, with empty arguments."""
        name = self._names.get(item.get("name") or "", item.get("name") or "")
        head: dict[str, Any] = {"index": call.index, "id": item.get("call_id") or item.get("id") or "", "type": call.kind}
        head[call.kind] = {"name": name, "arguments": ""} if call.kind == "function" else {"name": name, "input": ""}
        return self._chunk({"tool_calls": [head]})

    @staticmethod
    def _args(call: _Call, fragment: str) -> dict[str, Any]:
        body = {"arguments": fragment} if call.kind == "function" else {"input": fragment}
        return {"index": call.index, call.kind: body}

    def _shell(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = {**self._shell(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        if self._include_usage:
            chunk["usage"] = None
        return data_event(chunk)

    def _error(self, error_type: str, message: str, code: str | None = None) -> list[bytes]:
        self._done = True
        error = {"message": message, "type": error_type, "param": None, "code": code}
        return [data_event({"error": error}), DONE]


_Handler = Callable[[StreamTranslator, dict[str, Any]], list[bytes]]
_HANDLERS: dict[str, _Handler] = {
    "response.created": StreamTranslator._on_created,
    "response.output_text.delta": StreamTranslator._on_text,
    "response.refusal.delta": StreamTranslator._on_text,
    "response.reasoning_summary_part.added": StreamTranslator._on_summary_part,
    "response.reasoning_summary_text.delta": StreamTranslator._on_summary_delta,
    "response.output_item.added": StreamTranslator._on_item_added,
    "response.function_call_arguments.delta": StreamTranslator._on_arguments_delta,
    "response.custom_tool_call_input.delta": StreamTranslator._on_arguments_delta,
    "response.output_item.done": StreamTranslator._on_item_done,
    "response.completed": StreamTranslator._on_terminal,
    "response.incomplete": StreamTranslator._on_terminal,
    "response.failed": StreamTranslator._on_failed,
    "error": StreamTranslator._on_error,
}
