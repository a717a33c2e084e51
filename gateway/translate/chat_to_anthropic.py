"""Chat Completions client <-> Anthropic Messages upstream (PROTOCOLS.md §6.1, §6.2).

Request, as Droid's ``generic-chat-completion-api`` provider sends it::

    {"model": "claude-sonnet-4-5", "stream": true, "stream_options": {"include_usage": true},
     "temperature": 0.2, "messages": [{"role": "system", "content": "You are terse."},
                                      {"role": "user", "content": "List files"}]}
    -> {"model": <target.model>, "max_tokens": 32000, "stream": true, "temperature": 0.2,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "List files"}]}]}

The reply comes back as a ``chat.completion`` (:func:`response`) or, streamed,
as ``chat.completion.chunk`` events from :class:`StreamTranslator` (anthropic_to_chat_stream.py).
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, TypedDict

from gateway.translate import anthropic_build as build
from gateway.translate.anthropic_to_chat_stream import (
    StreamTranslator,
    custom_names,
    declared_names,
    declared_tools,
    finish_reason,
)
from gateway.translate.cache_marks import add_cache_marks
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import Target, Usage
from gateway.translate.tool_names import ToolNames

__all__ = ["request", "response", "StreamTranslator"]

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
    names = ToolNames(declared_names(body))
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


def _tools(body: dict[str, Any], names: ToolNames) -> list[dict[str, Any]]:
    result = []
    for kind, spec in declared_tools(body):
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
    names, custom = ToolNames(declared_names(client_body)), custom_names(client_body)
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
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(msg.get("stop_reason"))}],
        "usage": Usage.from_anthropic(msg.get("usage")).to_chat(),
    }


def _tool_call(block: Block, names: ToolNames, custom: set[str]) -> ChatToolCall:
    name = names.client(block["name"])
    arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    if name in custom:
        return {"id": block["id"], "type": "custom", "custom": {"name": name, "input": build.custom_input(arguments)}}
    return {"id": block["id"], "type": "function", "function": {"name": name, "arguments": arguments}}
