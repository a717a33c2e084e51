"""Codex (Responses) SSE events -> Anthropic Messages SSE: PROTOCOLS.md §6.7 and §1.8.

One instance per request. The output keeps Anthropic's strict order, which
the anthropic SDK's ``messages.stream()`` relies on: ``message_start``; per
output item one content block (``content_block_start``, deltas,
``content_block_stop``) with consecutive indexes; ``message_delta`` with the
stop reason and cumulative usage; ``message_stop``. For example::

    event: response.output_item.added
    data: {"type":"response.output_item.added","output_index":0,
           "item":{"type":"function_call","id":"fc_1","call_id":"call_a1","name":"ls","arguments":""}}

becomes::

    event: content_block_start
    data: {"type":"content_block_start","index":0,
           "content_block":{"type":"tool_use","id":"call_a1","name":"ls","input":{}}}

A reasoning item becomes a ``thinking`` block fed by the summary deltas and
closed by a ``signature_delta`` of ``"openai:" + encrypted_content``. Items
are translated one at a time: events of a later item that arrive while one
is still open are held back until it is done, since blocks cannot interleave.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from gateway.formats.sse import named_event
from gateway.translate.from_responses_stream import FromResponsesStream
from gateway.translate.mapping import (
    FOREIGN_SIGNATURE_PREFIX,
    Usage,
    responses_to_anthropic_stop,
)
from gateway.translate.tool_names import anthropic_tool_names, restoring_tool_names

_CALL_TYPES = ("function_call", "custom_tool_call")

# Responses error codes -> Anthropic error ``type`` (§1.9); anything else is api_error.
_ERROR_TYPES = {
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "usage_not_included": "billing_error",
    "context_length_exceeded": "invalid_request_error",
    "invalid_prompt": "invalid_request_error",
    "server_is_overloaded": "overloaded_error",
}


def anthropic_stop_reason(status: str | None, reason: str | None, has_tool_call: bool) -> str:
    """§6.8, with any ``incomplete`` response reported as cut short, never as tool_use."""
    if status == "incomplete":
        return "refusal" if reason == "content_filter" else "max_tokens"
    return responses_to_anthropic_stop(status, reason, has_tool_call)


def tool_use_id(call_id: str) -> str:
    """Anthropic ids allow only ``[A-Za-z0-9_-]``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", call_id) or f"toolu_{uuid.uuid4().hex[:24]}"


def tool_input(item: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments as the JSON object Anthropic needs ("" -> {})."""
    if item.get("type") == "custom_tool_call":
        return {"input": item.get("input") or ""}
    raw = item.get("arguments") or ""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


def tool_use_block(item: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    name = item.get("name") or ""
    return {"type": "tool_use", "id": tool_use_id(item.get("call_id") or item.get("id") or ""),
            "name": names.get(name, name), "input": tool_input(item)}


def summary_text(item: dict[str, Any]) -> str:
    return "\n\n".join(s.get("text") or "" for s in item.get("summary") or [] if s.get("text"))


def thinking_block(item: dict[str, Any], omit_text: bool) -> dict[str, Any] | None:
    """A reasoning item as a ``thinking`` block, or None when it holds nothing."""
    text = "" if omit_text else summary_text(item)
    blob = item.get("encrypted_content") or ""
    if not text and not blob:
        return None
    return {"type": "thinking", "thinking": text, "signature": FOREIGN_SIGNATURE_PREFIX + blob}


@dataclass
class _Block:
    index: int
    kind: str  # "thinking", "text", "tool_use" or "custom" (a custom tool's tool_use)
    streamed: bool = False  # deltas were sent
    signature: str = FOREIGN_SIGNATURE_PREFIX  # sent when a thinking block closes


class StreamTranslator(FromResponsesStream):
    """Codex SSE events -> Anthropic SSE bytes. See the module docstring."""

    def __init__(self, client_body: dict[str, Any], model: str) -> None:
        super().__init__()
        self._model = model
        self._names = restoring_tool_names(anthropic_tool_names(client_body))
        self._omit_thinking = (client_body.get("thinking") or {}).get("display") == "omitted"
        self._message_id = f"msg_{uuid.uuid4().hex[:24]}"
        self._started = False
        self._next_index = 0
        self._block: _Block | None = None
        self._active: int | None = None  # output_index of the item being translated
        self._held: dict[int, list[dict[str, Any]]] = {}
        self._has_call = False

    def _on_event(self, data: dict[str, Any]) -> list[bytes]:
        # Events of a later output item wait until the current one is finished.
        index = data.get("output_index")
        if isinstance(index, int) and self._active is not None and index != self._active:
            self._held.setdefault(index, []).append(data)
            return []
        return self._dispatch(data) + self._release_held()

    # -- sequencing ------------------------------------------------------------

    def _dispatch(self, data: dict[str, Any]) -> list[bytes]:
        handler = _HANDLERS.get(str(data.get("type")))
        if handler is None or self._done:
            return []
        if isinstance(data.get("output_index"), int) and self._active is None:
            self._active = data["output_index"]
        return handler(self, data)

    def _release_held(self) -> list[bytes]:
        out: list[bytes] = []
        while self._active is None and self._held and not self._done:
            for data in self._held.pop(min(self._held)):
                out += self._dispatch(data)
        return out

    # -- event handlers ----------------------------------------------------------

    def _on_created(self, data: dict[str, Any]) -> list[bytes]:
        response_id = (data.get("response") or {}).get("id")
        if response_id and not self._started:
            self._message_id = f"msg_{response_id}"
        return self._start()

    def _on_item_added(self, data: dict[str, Any]) -> list[bytes]:
        item = data.get("item") or {}
        out = self._start()
        if item.get("type") in _CALL_TYPES:
            self._open_call(item, out)
        return out

    def _on_summary_part(self, data: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        block = self._open("thinking", out)
        if block.streamed and not self._omit_thinking:
            out.append(_delta(block, {"type": "thinking_delta", "thinking": "\n\n"}))
        return out

    def _on_summary_delta(self, data: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        block = self._open("thinking", out)
        delta = data.get("delta") or ""
        if delta and not self._omit_thinking:
            block.streamed = True
            out.append(_delta(block, {"type": "thinking_delta", "thinking": delta}))
        return out

    def _on_text_delta(self, data: dict[str, Any]) -> list[bytes]:
        delta = data.get("delta") or ""
        if not delta:  # an empty text block would be rejected when sent back to Claude
            return []
        out: list[bytes] = []
        block = self._open("text", out)
        block.streamed = True
        return out + [_delta(block, {"type": "text_delta", "text": delta})]

    def _on_arguments_delta(self, data: dict[str, Any]) -> list[bytes]:
        delta = data.get("delta") or ""
        block = self._block
        if block is None or block.kind not in ("tool_use", "custom") or not delta:
            return []
        if block.kind == "custom":
            # The raw input streams as the inside of {"input": "<raw>"}.
            delta = ('{"input": "' if not block.streamed else "") + json.dumps(delta, ensure_ascii=False)[1:-1]
        block.streamed = True
        return [_delta(block, {"type": "input_json_delta", "partial_json": delta})]

    def _on_item_done(self, data: dict[str, Any]) -> list[bytes]:
        item = data.get("item") or {}
        kind = item.get("type")
        out = self._start()
        if kind == "reasoning":
            out += self._finish_reasoning(item)
        elif kind == "message":
            out += self._finish_message(item)
        elif kind in _CALL_TYPES:
            out += self._finish_call(item)
        out += self._close()
        self._active = None
        return out

    def _on_terminal(self, data: dict[str, Any]) -> list[bytes]:
        out = self._start()
        while True:  # items the upstream never finished: close them in index order
            out += self._close()
            self._active = None
            if not self._held:
                break
            out += self._release_held()
        resp = data.get("response") or {}
        status = resp.get("status") or ("incomplete" if data.get("type") == "response.incomplete" else "completed")
        reason = (resp.get("incomplete_details") or {}).get("reason")
        has_call = self._has_call or any((i or {}).get("type") in _CALL_TYPES for i in resp.get("output") or [])
        delta = {"stop_reason": anthropic_stop_reason(status, reason, has_call), "stop_sequence": None}
        usage = Usage.from_responses(resp.get("usage")).to_anthropic()
        out.append(named_event({"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(named_event({"type": "message_stop"}))
        self._done = True
        return out

    def _on_failed(self, data: dict[str, Any]) -> list[bytes]:
        error = (data.get("response") or {}).get("error") or {}
        code = str(error.get("code") or "server_error")
        return self._error(_ERROR_TYPES.get(code, "api_error"), error.get("message") or "upstream request failed")

    def _on_error(self, data: dict[str, Any]) -> list[bytes]:
        code = str(data.get("code") or "server_error")
        return self._error(_ERROR_TYPES.get(code, "api_error"), data.get("message") or "upstream error")

    # -- finishing an item ---------------------------------------------------------

    def _finish_reasoning(self, item: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        block = self._block
        if block is None:  # no summary events: take the text from the item
            shown = thinking_block(item, self._omit_thinking)
            if shown is None:
                return []
            block = self._open("thinking", out)
            if shown["thinking"]:
                out.append(_delta(block, {"type": "thinking_delta", "thinking": shown["thinking"]}))
        block.signature = FOREIGN_SIGNATURE_PREFIX + (item.get("encrypted_content") or "")
        return out

    def _finish_message(self, item: dict[str, Any]) -> list[bytes]:
        text = "".join(b["text"] for b in text_blocks(item))
        if self._block is not None or not text:  # already streamed, or nothing to show
            return []
        out: list[bytes] = []
        block = self._open("text", out)
        return out + [_delta(block, {"type": "text_delta", "text": text})]

    def _finish_call(self, item: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        block = self._block or self._open_call(item, out)
        if not block.streamed:
            raw = (item.get("arguments") or "") if block.kind == "tool_use" else json.dumps(tool_input(item))
            out += [_delta(block, {"type": "input_json_delta", "partial_json": raw})] if raw else []
        return out  # a streamed custom input gets its closing '"}' from _close()

    # -- block and event builders ----------------------------------------------------

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": self._message_id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": Usage().to_anthropic()}
        return [named_event({"type": "message_start", "message": message})]

    def _open(self, kind: str, out: list[bytes], content_block: dict[str, Any] | None = None) -> _Block:
        """Return the current item's block, first opening one of ``kind`` (events go to ``out``)."""
        if self._block is not None:
            return self._block
        block = self._block = _Block(self._next_index, kind)
        self._next_index += 1
        if content_block is None:
            content_block = {"type": "thinking", "thinking": ""} if kind == "thinking" else {"type": "text", "text": ""}
        out += self._start()
        out.append(named_event({"type": "content_block_start", "index": block.index, "content_block": content_block}))
        return block

    def _open_call(self, item: dict[str, Any], out: list[bytes]) -> _Block:
        self._has_call = True
        content_block = {**tool_use_block(item, self._names), "input": {}}
        return self._open("custom" if item.get("type") == "custom_tool_call" else "tool_use", out, content_block)

    def _close(self) -> list[bytes]:
        block, self._block = self._block, None
        if block is None:
            return []
        out = []
        if block.kind == "thinking":  # every thinking block ends with a signature
            out.append(_delta(block, {"type": "signature_delta", "signature": block.signature}))
        elif block.kind == "custom" and block.streamed:
            out.append(_delta(block, {"type": "input_json_delta", "partial_json": '"}'}))
        out.append(named_event({"type": "content_block_stop", "index": block.index}))
        return out

    def _error(self, error_type: str, message: str) -> list[bytes]:
        self._done = True
        return [named_event({"type": "error", "error": {"type": error_type, "message": message}})]


def _delta(block: _Block, delta: dict[str, Any]) -> bytes:
    return named_event({"type": "content_block_delta", "index": block.index, "delta": delta})


def text_blocks(item: dict[str, Any]) -> list[dict[str, str]]:
    """A message item's output_text / refusal parts as Anthropic text blocks (none empty)."""
    texts = []
    for part in item.get("content") or []:
        text = part.get("text") if part.get("type") == "output_text" else part.get("refusal")
        if text:
            texts.append({"type": "text", "text": text})
    return texts


_Handler = Callable[[StreamTranslator, dict[str, Any]], list[bytes]]
_HANDLERS: dict[str, _Handler] = {
    "response.created": StreamTranslator._on_created,
    "response.output_item.added": StreamTranslator._on_item_added,
    "response.reasoning_summary_part.added": StreamTranslator._on_summary_part,
    "response.reasoning_summary_text.delta": StreamTranslator._on_summary_delta,
    "response.output_text.delta": StreamTranslator._on_text_delta,
    "response.refusal.delta": StreamTranslator._on_text_delta,
    "response.function_call_arguments.delta": StreamTranslator._on_arguments_delta,
    "response.custom_tool_call_input.delta": StreamTranslator._on_arguments_delta,
    "response.output_item.done": StreamTranslator._on_item_done,
    "response.completed": StreamTranslator._on_terminal,
    "response.incomplete": StreamTranslator._on_terminal,
    "response.failed": StreamTranslator._on_failed,
    "error": StreamTranslator._on_error,
}
