"""Chat Completions client <-> Anthropic Messages upstream (PROTOCOLS.md §6.1, §6.2).

Request, as Droid's ``generic-chat-completion-api`` provider sends it::

    {"model": "claude-sonnet-4-5", "stream": true, "stream_options": {"include_usage": true},
     "temperature": 0.2, "messages": [{"role": "system", "content": "You are terse."},
                                      {"role": "user", "content": "List files"}]}
    -> {"model": <target.model>, "max_tokens": 32000, "stream": true, "temperature": 0.2,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "List files"}]}]}

The reply comes back as a ``chat.completion`` (:func:`response`) or, streamed,
as ``chat.completion.chunk`` events from :class:`StreamTranslator`.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, TypedDict

from gateway.formats.sse import DONE, data_event
from gateway.formats.stream_errors import chat_error
from gateway.translate import anthropic_build as build
from gateway.translate.anthropic_events import AnthropicEventTranslator
from gateway.translate.cache_marks import add_cache_marks
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import ANTHROPIC_TO_CHAT_FINISH, Target, Usage
from gateway.translate.tool_names import ToolNames

Block = build.Block


class ChatToolCall(TypedDict, total=False):
    id: str
    type: str  # "function" or "custom" (freeform input)
    function: dict[str, str]
    custom: dict[str, str]


# -- request ------------------------------------------------------------------------

def request(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """Translate a Chat Completions request body into an Anthropic Messages body.

    Raises TranslationError for what Claude cannot do (``n > 1``, audio input,
    invalid tool-call arguments, a conversation without a user message).
    """
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise TranslationError("n > 1 is not supported", param="n")
    names = ToolNames(_tool_names(body))
    system: list[Block | None] = []
    turns: list[build.Turn] = []
    for message in body.get("messages") or []:
        _add_message(message, names, system, turns)
    if _format_type(body) == "json_object":
        system.append(build.text_block(build.JSON_OBJECT_INSTRUCTION))
    cap = build.max_tokens(body.get("max_completion_tokens") or body.get("max_tokens"), target)
    out: dict[str, Any] = {"model": target.model, "max_tokens": cap}
    if blocks := build.system_blocks(system):
        out["system"] = blocks
    out["messages"] = build.normalize_turns(turns)
    _apply_options(out, body, names, target)
    return add_cache_marks(build.finish_request(out))


def _apply_options(out: dict[str, Any], body: dict[str, Any], names: ToolNames, target: Target) -> None:
    if "stream" in body:
        out["stream"] = bool(body["stream"])
    if stops := build.stop_sequences(body.get("stop")):
        out["stop_sequences"] = stops
    build.apply_sampling(out, body.get("temperature"), body.get("top_p"))
    if tools := _tools(body, names):
        out["tools"] = tools
        if choice := build.tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), names):
            out["tool_choice"] = choice
    if _format_type(body) == "json_schema":
        schema = (body["response_format"].get("json_schema") or {}).get("schema")
        out.setdefault("output_config", {})["format"] = build.json_schema_format(schema)
    if user_id := build.hashed_user(body.get("user")):
        out["metadata"] = {"user_id": user_id}
    build.apply_reasoning(out, body.get("reasoning_effort"), target)


def _declared(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, spec) of each named ``function`` or ``custom`` tool the client declared."""
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        kind = str(tool.get("type")) if isinstance(tool, dict) else ""
        spec = tool.get(kind) if kind in ("function", "custom") else None
        if isinstance(spec, dict) and spec.get("name"):
            yield kind, spec


def _tool_names(body: dict[str, Any]) -> list[str]:
    return [spec["name"] for _, spec in _declared(body)]


def _custom_names(body: dict[str, Any]) -> set[str]:
    """Freeform tools: Claude sees them taking ``{"input": string}``; the client gets the bare string back."""
    return {spec["name"] for kind, spec in _declared(body) if kind == "custom"}


def _tools(body: dict[str, Any], names: ToolNames) -> list[dict[str, Any]]:
    result = []
    for kind, spec in _declared(body):
        name = names.upstream(spec["name"])
        if kind == "custom":
            result.append(build.custom_tool(name, spec.get("description"), spec.get("format")))
            continue
        out: dict[str, Any] = {"name": name, "input_schema": build.input_schema(spec.get("parameters"))}
        if spec.get("description"):
            out["description"] = spec["description"]
        result.append(out)
    return result


def _format_type(body: dict[str, Any]) -> str | None:
    fmt = body.get("response_format")
    return fmt.get("type") if isinstance(fmt, dict) else None


def _add_message(message: dict[str, Any], names: ToolNames, system: list[Block | None], turns: list[build.Turn]) -> None:
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        system.extend(b for b in _content_blocks(content) if b["type"] == "text")
    elif role == "user":
        turns.append(("user", _content_blocks(content)))
    elif role == "assistant":
        turns.append(("assistant", _assistant_blocks(message, names)))
    elif role == "tool":
        result = build.tool_result_block(message.get("tool_call_id"), _tool_content(content))
        turns.append(("user", [result]))
    else:
        raise TranslationError(f"unsupported message role {role!r}", param="messages")


def _content_blocks(content: Any) -> list[Block]:
    """User/system content (string or parts) as Anthropic blocks; empty text dropped."""
    if isinstance(content, str):
        parts: list[Any] = [{"type": "text", "text": content}]
    else:
        parts = content or []
    blocks = [_part_block(p) for p in parts if isinstance(p, dict)]
    return [b for b in blocks if b]


def _part_block(part: dict[str, Any]) -> Block | None:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        return build.text_block(part.get("text") or part.get("refusal"), part.get("cache_control"))
    if kind == "image_url":
        image = part.get("image_url")
        return build.image_block(image.get("url") if isinstance(image, dict) else image)
    if kind == "file":
        file = part.get("file") or {}
        return build.pdf_block(file.get("file_data"))
    raise TranslationError(f"unsupported content part type {kind!r}", param="messages")


def _assistant_blocks(message: dict[str, Any], names: ToolNames) -> list[Block]:
    blocks = _content_blocks(message.get("content"))
    for call in message.get("tool_calls") or []:
        if call.get("type") == "custom":
            spec = call.get("custom") or {}
            raw = spec.get("input")
            tool_input: Any = {"input": raw if isinstance(raw, str) else ""}
        else:
            spec = call.get("function") or {}
            tool_input = build.parse_arguments(spec.get("arguments"), param="messages")
        blocks.append(build.tool_use_block(call.get("id"), names.upstream(spec.get("name") or ""), tool_input))
    return blocks


def _tool_content(content: Any) -> str | list[Block]:
    if isinstance(content, str):
        return content
    return [b for b in _content_blocks(content) if b["type"] in ("text", "image")]


# -- response -----------------------------------------------------------------------

def response(msg: dict[str, Any], client_body: dict[str, Any], model: str) -> dict[str, Any]:
    """Translate an Anthropic message into a ``chat.completion`` for ``model``.

    ``{"id": "msg_01", "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", ...}``
    -> ``{"id": "chatcmpl-msg_01", "object": "chat.completion", "choices": [{"index": 0,
    "message": {"role": "assistant", "content": "Hi", "refusal": null}, "finish_reason": "stop"}], ...}``
    """
    names, custom = ToolNames(_tool_names(client_body)), _custom_names(client_body)
    blocks = msg.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    calls = [_tool_call(b, names, custom) for b in blocks if b.get("type") == "tool_use"]
    thinking = "\n\n".join(b["thinking"] for b in blocks if b.get("type") == "thinking" and b.get("thinking"))
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else ""), "refusal": None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = thinking
    return {
        "id": "chatcmpl-" + str(msg.get("id") or uuid.uuid4().hex),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(msg.get("stop_reason"))}],
        "usage": Usage.from_anthropic(msg.get("usage")).to_chat(),
    }


def _tool_call(block: Block, names: ToolNames, custom: set[str]) -> ChatToolCall:
    name = names.client(block["name"])
    arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    if name in custom:
        return {"id": block["id"], "type": "custom", "custom": {"name": name, "input": build.custom_input(arguments)}}
    return {"id": block["id"], "type": "function", "function": {"name": name, "arguments": arguments}}


def _finish(stop_reason: Any) -> str:
    return ANTHROPIC_TO_CHAT_FINISH.get(stop_reason or "end_turn", "stop")


# -- stream -------------------------------------------------------------------------

class StreamTranslator(AnthropicEventTranslator):
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
        self._names = ToolNames(_tool_names(client_body))
        self._custom = _custom_names(client_body)
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
            raw = build.custom_input("".join(self._custom_json.pop(index)))
            call = {"index": self._calls[index], "custom": {"input": raw}}
            return [self._chunk({"tool_calls": [call]})] if raw else []
        if index in self._calls and index not in self._has_args:
            return [self._arguments(index, "{}")]  # clients parse the joined arguments: never leave them ""
        return []

    def _on_message_delta(self, data: dict[str, Any]) -> list[bytes]:
        self.usage.update_anthropic(data.get("usage"))
        self._finish = _finish((data.get("delta") or {}).get("stop_reason"))
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

