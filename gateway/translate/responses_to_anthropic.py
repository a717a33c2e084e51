"""Responses client <-> Anthropic Messages upstream (PROTOCOLS.md §6.3, §6.4).

For Droid's ``openai`` provider, Codex CLI and the openai SDK's ``responses``
talking to Claude. Request, as Codex CLI sends it (no ``instructions``)::

    {"model": "claude-sonnet-4-5", "stream": true, "store": false,
     "input": [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be terse."}]},
               {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files"}]},
               {"type": "function_call", "call_id": "call_a1", "name": "shell", "arguments": "{\\"cmd\\":\\"ls\\"}"},
               {"type": "function_call_output", "call_id": "call_a1", "output": "a.txt"}],
     "tools": [{"type": "function", "name": "shell", "parameters": {...}}, {"type": "web_search"}]}
    -> {"model": <target.model>, "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "Be terse."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "List files"}]},
                     {"role": "assistant", "content": [{"type": "tool_use", "id": "call_a1", "name": "shell", "input": {"cmd": "ls"}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_a1", "content": "a.txt"}]}],
        "tools": [{"name": "shell", "input_schema": {...}}]}

Reasoning items go back to Claude as thinking blocks only when their
``encrypted_content`` carries this gateway's ``SIGNATURE_PREFIX`` (so it was a
Claude signature); OpenAI's are dropped. The reply is a Response object
(:func:`response`) or the §3.5 event stream (:class:`StreamTranslator`, anthropic_to_responses_stream.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gateway.translate import anthropic_build as build
from gateway.translate import responses_output as out
from gateway.translate.cache_marks import add_cache_marks
from gateway.translate.errors import COMPACTION_UNSUPPORTED, TranslationError
from gateway.translate.mapping import Target, Usage, anthropic_to_responses_status
from gateway.translate.responses_output import (
    REDACTED_PREFIX,
    SIGNATURE_PREFIX,
    ResponsesTools,
)
from gateway.translate.anthropic_to_responses_stream import StreamTranslator

__all__ = ["SIGNATURE_PREFIX", "REDACTED_PREFIX", "StreamTranslator", "request", "response"]

Block = build.Block


@dataclass
class _Context:
    """What the input walk collects: the tool table, system blocks and raw turns."""

    tools: ResponsesTools
    system: list[Block | None]
    turns: list[build.Turn] = field(default_factory=list)


# -- request ------------------------------------------------------------------------

def request(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """Translate a Responses request body into an Anthropic Messages body.

    Raises TranslationError for ``previous_response_id``, ``item_reference``,
    unsupported files or efforts, invalid call arguments, and input without a user turn.
    """
    if body.get("previous_response_id"):
        raise TranslationError("previous_response_id is not supported: resend the full input", param="previous_response_id")
    tools = ResponsesTools(body.get("tools"))
    context = _Context(tools, [build.text_block(body.get("instructions"))])
    for item in _input_items(body.get("input")):
        _add_item(item, context)
    fmt = _text_format(body)
    if fmt.get("type") == "json_object":
        context.system.append(build.text_block(build.JSON_OBJECT_INSTRUCTION))
    result: dict[str, Any] = {"model": target.model, "max_tokens": build.max_tokens(body.get("max_output_tokens"), target)}
    if system := build.system_blocks(context.system):
        result["system"] = system
    result["messages"] = build.normalize_turns(context.turns)
    _apply_options(result, body, tools, target)
    return add_cache_marks(build.finish_request(result))


def _apply_options(result: dict[str, Any], body: dict[str, Any], tools: ResponsesTools, target: Target) -> None:
    if "stream" in body:
        result["stream"] = bool(body["stream"])
    build.apply_sampling(result, body.get("temperature"), body.get("top_p"))
    if definitions := tools.definitions():
        result["tools"] = definitions
        if choice := build.tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), tools.names):
            result["tool_choice"] = choice
    fmt = _text_format(body)
    if fmt.get("type") == "json_schema":
        result.setdefault("output_config", {})["format"] = build.json_schema_format(fmt.get("schema"))
    if user_id := build.hashed_user(body.get("user") or body.get("safety_identifier")):
        result["metadata"] = {"user_id": user_id}
    build.apply_reasoning(result, build.as_dict(body.get("reasoning")).get("effort"), target)


def _text_format(body: dict[str, Any]) -> dict[str, Any]:
    return build.as_dict(build.as_dict(body.get("text")).get("format"))


def _input_items(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise TranslationError("input must be a string or a list of items", param="input")
    return [item for item in value if isinstance(item, dict)]


def _add_item(item: dict[str, Any], context: _Context) -> None:
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "item_reference":
        raise TranslationError("item_reference is not supported: resend the full item", param="input")
    if kind == "compaction_trigger":
        # Codex's in-band remote compaction: only the Codex backend can produce the compaction item.
        raise TranslationError(COMPACTION_UNSUPPORTED, status=501, param="input")
    handler = _ITEM_HANDLERS.get(str(kind))
    if handler:  # hosted-tool calls and their outputs (web_search_call, ...) have no Claude form
        handler(item, context)


def _message(item: dict[str, Any], context: _Context) -> None:
    role = item.get("role")
    blocks = _content_blocks(item.get("content"))
    if role in ("system", "developer"):
        context.system.extend(b for b in blocks if b["type"] == "text")
    elif role in ("user", "assistant"):
        context.turns.append((role, blocks))
    else:
        raise TranslationError(f"unsupported message role {role!r}", param="input")


def _function_call(item: dict[str, Any], context: _Context) -> None:
    name = context.tools.upstream(item.get("name") or "", item.get("namespace"))
    tool_input = build.parse_arguments(item.get("arguments"), param="input")
    context.turns.append(("assistant", [build.tool_use_block(item.get("call_id"), name, tool_input)]))


def _custom_tool_call(item: dict[str, Any], context: _Context) -> None:
    name = context.tools.upstream(item.get("name") or "", item.get("namespace"))
    raw = item.get("input")
    context.turns.append(("assistant", [build.tool_use_block(item.get("call_id"), name, {"input": raw if isinstance(raw, str) else ""})]))


def _call_output(item: dict[str, Any], context: _Context) -> None:
    output = item.get("output")
    content: str | list[Block]
    if isinstance(output, str):
        content = output
    else:
        content = [b for b in _content_blocks(output) if b["type"] in ("text", "image")]
    context.turns.append(("user", [build.tool_result_block(item.get("call_id"), content)]))


def _reasoning(item: dict[str, Any], context: _Context) -> None:
    """Claude's own thinking comes back; anything else (OpenAI's blobs) is dropped."""
    blob = item.get("encrypted_content")
    if not isinstance(blob, str):
        return
    if blob.startswith(SIGNATURE_PREFIX):
        summary = item.get("summary") or []
        text = "".join(p.get("text", "") for p in summary if isinstance(p, dict))
        block: Block = {"type": "thinking", "thinking": text, "signature": blob[len(SIGNATURE_PREFIX):]}
        context.turns.append(("assistant", [block]))
    elif blob.startswith(REDACTED_PREFIX):
        context.turns.append(("assistant", [{"type": "redacted_thinking", "data": blob[len(REDACTED_PREFIX):]}]))


_ITEM_HANDLERS: dict[str, Callable[[dict[str, Any], _Context], None]] = {
    "message": _message,
    "function_call": _function_call,
    "custom_tool_call": _custom_tool_call,
    "function_call_output": _call_output,
    "custom_tool_call_output": _call_output,
    "reasoning": _reasoning,
}


def _content_blocks(content: Any) -> list[Block]:
    parts: list[Any] = [{"type": "input_text", "text": content}] if isinstance(content, str) else content or []
    blocks = [_part_block(p) for p in parts if isinstance(p, dict)]
    return [b for b in blocks if b]


def _part_block(part: dict[str, Any]) -> Block | None:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return build.text_block(part.get("text"), part.get("cache_control"))
    if kind == "refusal":
        return build.text_block(part.get("refusal"))
    if kind == "input_image":
        if part.get("file_id") and not part.get("image_url"):
            raise TranslationError("input_image with file_id is not supported: send image_url", param="input")
        return build.image_block(part.get("image_url"))
    if kind == "input_file":
        return build.pdf_block(part.get("file_data"), part.get("file_url"))
    raise TranslationError(f"unsupported content part type {kind!r}", param="input")


# -- response -----------------------------------------------------------------------

def response(msg: dict[str, Any], client_body: dict[str, Any], model: str) -> dict[str, Any]:
    """Translate an Anthropic message into a Response object for ``model``.

    ``{"id": "msg_01XY", "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", ...}``
    -> ``{"id": "resp_01XY", "object": "response", "status": "completed", "output": [{"id": "msg_01XY_0",
    "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi", ...}]}], ...}``
    """
    base = out.id_base(msg.get("id"))
    tools = ResponsesTools(client_body.get("tools"))
    status, incomplete = anthropic_to_responses_status(msg.get("stop_reason"))
    return out.response_object(
        "resp_" + base, int(time.time()), model, client_body, status=status,
        output=out.output_items(msg.get("content") or [], base, tools),
        usage=Usage.from_anthropic(msg.get("usage")).to_responses(), incomplete=incomplete,
    )
