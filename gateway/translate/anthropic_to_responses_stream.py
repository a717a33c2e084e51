"""Anthropic SSE -> Responses SSE, for a Responses client talking to Claude (PROTOCOLS.md §3.5, §6.4).

One Anthropic content block becomes one output item::

    content_block_start {"index": 0, "content_block": {"type": "text", "text": ""}}
    content_block_delta {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
    content_block_stop  {"index": 0}
    -> response.output_item.added {"output_index": 0, "item": {"id": "msg_01XY_0", "type": "message", ...}}
       response.content_part.added, response.output_text.delta {"delta": "Hi"},
       response.output_text.done, response.content_part.done, response.output_item.done

A text item opens at its first non-empty delta, so an empty text block leaves
no trace. Freeform (custom) tool input is JSON-wrapped by Claude, so it is sent
as one ``custom_tool_call_input.delta`` when its block ends.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.formats.sse import named_event
from gateway.translate import responses_output as out
from gateway.translate.from_anthropic_stream import FromAnthropicStream
from gateway.translate.mapping import Usage, anthropic_to_responses_status


@dataclass
class _Block:
    """One Anthropic content block and the output item it feeds (``item`` None until opened)."""

    kind: str  # "text" | "reasoning" | "call"
    item_id: str
    source: dict[str, Any]
    item: dict[str, Any] | None = None
    output_index: int = -1
    parts: list[str] = field(default_factory=list)
    part_open: bool = False
    suffix: str = ""  # call items: the id after "fc_"/"ctc_"


class StreamTranslator(FromAnthropicStream):
    """Anthropic SSE events in, Responses SSE bytes out, with a running ``sequence_number``.

    ``usage`` holds the latest cumulative upstream usage; ``done`` turns true once
    a terminal event (``response.completed``/``incomplete``/``failed``) has been produced.
    """

    def __init__(self, client_body: dict[str, Any], model: str) -> None:
        self.model = model
        self.usage = Usage()
        super().__init__()
        self._body = client_body
        self._tools = out.ResponsesTools(client_body.get("tools"))
        self._base = uuid.uuid4().hex[:24]
        self._created = int(time.time())
        self._seq = 0
        self._started = False
        self._stop_reason: str | None = None
        self._stopped = False
        self._blocks: dict[int, _Block] = {}
        self._done_items: dict[int, dict[str, Any]] = {}
        self._next_index = 0

    # -- interface ----------------------------------------------------------------

    UNFINISHED = "upstream stream ended before the response was complete"

    def _stop_seen(self) -> bool:
        return self._stopped

    def fail(self, error_type: str, message: str) -> list[bytes]:
        """An ``error`` event then ``response.failed`` (created first if nothing was sent yet)."""
        if self.done:
            return []
        events = [] if self._started else self._start()
        code = out.error_code(error_type, message)
        events.append(self._emit("error", code=code, message=message, param=None))
        error = {"code": code, "message": message}
        events.append(self._emit("response.failed", response=self._response("failed", error=error)))
        self.done = True
        return events

    # -- helpers ------------------------------------------------------------------

    def _emit(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return named_event(event)

    def _response(self, status: str, incomplete: Any = None, error: Any = None) -> dict[str, Any]:
        output = [self._done_items[i] for i in sorted(self._done_items)]
        usage = self.usage.to_responses() if status != "in_progress" else None
        return out.response_object("resp_" + self._base, self._created, self.model, self._body, status=status,
                                   output=output, usage=usage, incomplete=incomplete, error=error)

    def _start(self) -> list[bytes]:
        self._started = True
        shell = self._response("in_progress")
        return [self._emit("response.created", response=shell), self._emit("response.in_progress", response=shell)]

    def _open(self, block: _Block, item: dict[str, Any]) -> bytes:
        block.item, block.output_index = item, self._next_index
        self._next_index += 1
        return self._emit("response.output_item.added", output_index=block.output_index, item=item)

    def _where(self, block: _Block) -> dict[str, Any]:
        return {"item_id": block.item_id, "output_index": block.output_index}

    # -- upstream events ----------------------------------------------------------

    def _on_message_start(self, data: dict[str, Any]) -> list[bytes]:
        message = data.get("message") or {}
        if message.get("id"):
            self._base = out.id_base(message["id"])
        self.usage = Usage.from_anthropic(message.get("usage"))
        return [] if self._started else self._start()

    def _on_block_start(self, data: dict[str, Any]) -> list[bytes]:
        index, source = data.get("index"), data.get("content_block") or {}
        kind = source.get("type")
        if not isinstance(index, int) or kind not in ("text", "thinking", "redacted_thinking", "tool_use"):
            return []  # server-tool blocks and the like have no Responses item here
        if kind == "text":
            block = self._blocks[index] = _Block("text", f"msg_{self._base}_{index}", source)
            return self._text(block, source.get("text") or "")
        if kind == "tool_use":
            return self._start_call(index, source)
        block = self._blocks[index] = _Block("reasoning", f"rs_{self._base}_{index}", source)
        events = [self._open(block, {"id": block.item_id, "type": "reasoning", "summary": []})]
        return events + self._thinking(block, source.get("thinking") or "")

    def _start_call(self, index: int, source: dict[str, Any]) -> list[bytes]:
        suffix = f"{self._base}_{index}"
        item = out.call_item(suffix, source.get("id", ""), source.get("name", ""), "", self._tools, "in_progress")
        block = self._blocks[index] = _Block("call", item["id"], source, suffix=suffix)
        events = [self._open(block, item)]
        if source.get("input"):
            events += self._arguments(block, json.dumps(source["input"], ensure_ascii=False))
        return events

    def _on_block_delta(self, data: dict[str, Any]) -> list[bytes]:
        block, delta = self._blocks.get(data.get("index", -1)), data.get("delta") or {}
        kind = delta.get("type")
        if block is None:
            return []
        if kind == "text_delta" and block.kind == "text":
            return self._text(block, delta.get("text") or "")
        if kind == "thinking_delta" and block.kind == "reasoning":
            return self._thinking(block, delta.get("thinking") or "")
        if kind == "signature_delta" and block.kind == "reasoning":
            block.source["signature"] = block.source.get("signature", "") + (delta.get("signature") or "")
        if kind == "input_json_delta" and block.kind == "call":
            return self._arguments(block, delta.get("partial_json") or "")
        return []

    def _text(self, block: _Block, text: str) -> list[bytes]:
        if not text:
            return []
        events = []
        if block.item is None:
            events.append(self._open(block, out.message_item(block.item_id, None, "in_progress")))
            part = out.output_text("")
            events.append(self._emit("response.content_part.added", **self._where(block), content_index=0, part=part))
        block.parts.append(text)
        events.append(self._emit("response.output_text.delta", **self._where(block), content_index=0, delta=text, logprobs=[]))
        return events

    def _thinking(self, block: _Block, text: str) -> list[bytes]:
        if not text:
            return []
        events = []
        if not block.part_open:
            block.part_open = True
            part = {"type": "summary_text", "text": ""}
            events.append(self._emit("response.reasoning_summary_part.added", **self._where(block), summary_index=0, part=part))
        block.parts.append(text)
        events.append(self._emit("response.reasoning_summary_text.delta", **self._where(block), summary_index=0, delta=text))
        return events

    def _arguments(self, block: _Block, fragment: str) -> list[bytes]:
        if not fragment:
            return []
        block.parts.append(fragment)
        if block.item and block.item["type"] == "custom_tool_call":
            return []  # sent whole at the end: the raw input hides inside {"input": "..."}
        return [self._emit("response.function_call_arguments.delta", **self._where(block), delta=fragment)]

    def _on_block_stop(self, data: dict[str, Any]) -> list[bytes]:
        block = self._blocks.pop(data.get("index", -1), None)
        if block is None or block.item is None:
            return []
        close = {"text": self._close_text, "reasoning": self._close_reasoning, "call": self._close_call}[block.kind]
        events = close(block)
        self._done_items[block.output_index] = block.item
        return events + [self._emit("response.output_item.done", output_index=block.output_index, item=block.item)]

    def _close_text(self, block: _Block) -> list[bytes]:
        text = "".join(block.parts)
        block.item = out.message_item(block.item_id, text)
        where = {**self._where(block), "content_index": 0}
        return [self._emit("response.output_text.done", **where, text=text, logprobs=[]),
                self._emit("response.content_part.done", **where, part=out.output_text(text))]

    def _close_reasoning(self, block: _Block) -> list[bytes]:
        text = "".join(block.parts)
        block.item = out.reasoning_item(block.item_id, {**block.source, "thinking": text})
        if not block.part_open:
            return []
        where = {**self._where(block), "summary_index": 0}
        return [self._emit("response.reasoning_summary_text.done", **where, text=text),
                self._emit("response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text})]

    def _close_call(self, block: _Block) -> list[bytes]:
        events = [] if block.parts else self._arguments(block, "{}")
        arguments = "".join(block.parts) or "{}"
        source = block.source
        block.item = out.call_item(block.suffix, source.get("id", ""), source.get("name", ""), arguments, self._tools)
        if block.item["type"] == "custom_tool_call":
            raw = block.item["input"]
            if raw:
                events.append(self._emit("response.custom_tool_call_input.delta", **self._where(block), delta=raw))
            return events + [self._emit("response.custom_tool_call_input.done", **self._where(block), input=raw)]
        name = block.item["name"]
        return events + [self._emit("response.function_call_arguments.done", **self._where(block), name=name, arguments=arguments)]

    def _on_message_delta(self, data: dict[str, Any]) -> list[bytes]:
        self.usage.update_anthropic(data.get("usage"))
        self._stop_reason = (data.get("delta") or {}).get("stop_reason") or self._stop_reason
        self._stopped = True
        return []

    def _on_message_stop(self, data: dict[str, Any]) -> list[bytes]:
        events = [] if self._started else self._start()
        for index in sorted(self._blocks):  # a block the upstream never closed
            events += self._on_block_stop({"index": index})
        status, incomplete = anthropic_to_responses_status(self._stop_reason)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        events.append(self._emit(kind, response=self._response(status, incomplete)))
        self.done = True
        return events

    def _on_error(self, data: dict[str, Any]) -> list[bytes]:
        error = data.get("error") or {}
        return self.fail(str(error.get("type") or "api_error"), str(error.get("message") or "upstream error"))

