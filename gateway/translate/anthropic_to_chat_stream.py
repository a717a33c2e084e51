"""Anthropic SSE -> Chat Completions chunks, for a Chat client talking to Claude (PROTOCOLS.md §2.5, §6.2).

One content block becomes deltas of the one choice; a ``tool_use`` block becomes
one entry of ``tool_calls``, numbered by call, not by block::

    content_block_start {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_01A", "name": "get_weather"}}
    -> data: {..."choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "toolu_01A",
              "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}, ...}]}

The stream ends with the finish chunk, the usage chunk when the client asked for
``stream_options.include_usage``, and ``data: [DONE]``. The Chat client's tool
declarations are read here too, for ``chat_to_anthropic`` as well.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from gateway.formats.sse import DONE, data_event
from gateway.formats.stream_errors import chat_error
from gateway.translate.anthropic_build import custom_input
from gateway.translate.from_anthropic_stream import FromAnthropicStream
from gateway.translate.mapping import ANTHROPIC_TO_CHAT_FINISH, Usage
from gateway.translate.tool_names import ToolNames


def declared_tools(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, spec) of each named ``function`` or ``custom`` tool the client declared."""
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        kind = str(tool.get("type")) if isinstance(tool, dict) else ""
        spec = tool.get(kind) if kind in ("function", "custom") else None
        if isinstance(spec, dict) and spec.get("name"):
            yield kind, spec


def declared_names(body: dict[str, Any]) -> list[str]:
    return [spec["name"] for _, spec in declared_tools(body)]


def custom_names(body: dict[str, Any]) -> set[str]:
    """Freeform tools: Claude sees them taking ``{"input": string}``; the client gets the bare string back."""
    return {spec["name"] for kind, spec in declared_tools(body) if kind == "custom"}


def finish_reason(stop_reason: Any) -> str:
    return ANTHROPIC_TO_CHAT_FINISH.get(stop_reason or "end_turn", "stop")


class StreamTranslator(FromAnthropicStream):
    """Anthropic SSE events in, ``chat.completion.chunk`` SSE bytes out (PROTOCOLS.md §2.5, §6.2).

    ``content_block_start {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_01A", ...}}``
    -> ``data: {..."choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "toolu_01A",
    "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}, ...}]}``

    ``usage`` holds the latest cumulative upstream usage; ``done`` turns true once
    ``[DONE]`` has been produced.
    """

    def __init__(self, client_body: dict[str, Any], model: str) -> None:
        self.model = model
        super().__init__()
        self.usage = Usage()
        self._names = ToolNames(declared_names(client_body))
        self._custom = custom_names(client_body)
        self._include_usage = bool((client_body.get("stream_options") or {}).get("include_usage"))
        self._id = "chatcmpl-" + uuid.uuid4().hex
        self._created = int(time.time())
        self._started = False
        self._finish: str | None = None
        self._calls: dict[int, int] = {}  # content-block index -> tool-call index
        self._has_args: set[int] = set()
        # A freeform call's input arrives as JSON fragments of {"input": ...}; the
        # client wants the bare string, so it is sent whole when the block ends.
        self._custom_json: dict[int, list[str]] = {}

    def _stop_seen(self) -> bool:
        return self._finish is not None

    def fail(self, error_type: str, message: str) -> list[bytes]:
        if self.done:
            return []
        self.done = True
        return chat_error(error_type, message)

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return data_event(chunk)

    def _on_message_start(self, data: dict[str, Any]) -> list[bytes]:
        message = data.get("message") or {}
        if message.get("id"):
            self._id = "chatcmpl-" + message["id"]
        self.usage = Usage.from_anthropic(message.get("usage"))
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, data: dict[str, Any]) -> list[bytes]:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []
        index = self._calls[data["index"]] = len(self._calls)
        name = self._names.client(block.get("name", ""))
        if name in self._custom:
            self._custom_json[data["index"]] = [json.dumps(block["input"])] if block.get("input") else []
            call = {"index": index, "id": block.get("id"), "type": "custom", "custom": {"name": name, "input": ""}}
            return [self._chunk({"tool_calls": [call]})]
        call = {"index": index, "id": block.get("id"), "type": "function", "function": {"name": name, "arguments": ""}}
        out = [self._chunk({"tool_calls": [call]})]
        if block.get("input"):
            out.append(self._arguments(data["index"], json.dumps(block["input"], ensure_ascii=False)))
        return out

    def _on_block_delta(self, data: dict[str, Any]) -> list[bytes]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "input_json_delta" and delta.get("partial_json") and data.get("index") in self._calls:
            if data["index"] in self._custom_json:
                self._custom_json[data["index"]].append(delta["partial_json"])
                return []
            return [self._arguments(data["index"], delta["partial_json"])]
        return []

    def _arguments(self, block_index: int, fragment: str) -> bytes:
        self._has_args.add(block_index)
        call = {"index": self._calls[block_index], "function": {"arguments": fragment}}
        return self._chunk({"tool_calls": [call]})

    def _on_block_stop(self, data: dict[str, Any]) -> list[bytes]:
        index = data.get("index")
        if index in self._custom_json:
            raw = custom_input("".join(self._custom_json.pop(index)))
            call = {"index": self._calls[index], "custom": {"input": raw}}
            return [self._chunk({"tool_calls": [call]})] if raw else []
        if index in self._calls and index not in self._has_args:
            return [self._arguments(index, "{}")]  # clients parse the joined arguments: never leave them ""
        return []

    def _on_message_delta(self, data: dict[str, Any]) -> list[bytes]:
        self.usage.update_anthropic(data.get("usage"))
        self._finish = finish_reason((data.get("delta") or {}).get("stop_reason"))
        return [self._chunk({}, self._finish)]

    def _on_message_stop(self, data: dict[str, Any]) -> list[bytes]:
        out = [] if self._finish is not None else [self._chunk({}, "stop")]
        if self._include_usage:
            out.append(data_event({
                "id": self._id, "object": "chat.completion.chunk", "created": self._created,
                "model": self.model, "choices": [], "usage": self.usage.to_chat(),
            }))
        self.done = True
        return out + [DONE]

    def _on_error(self, data: dict[str, Any]) -> list[bytes]:
        error = data.get("error") or {}
        return self.fail(str(error.get("type") or "api_error"), str(error.get("message") or "upstream error"))

