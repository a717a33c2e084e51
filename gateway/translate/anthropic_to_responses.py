"""Anthropic Messages client, Responses (Codex) upstream: PROTOCOLS.md §6.7.

For Claude Code, Droid's ``anthropic`` provider or the anthropic SDK asking
for a GPT model. ``request()`` returns a Responses body; the gateway then
applies ``gateway.upstream.codex_body.prepare()``. For example::

    {"model": "gpt-5-codex", "max_tokens": 32000, "stream": true,
     "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}],
     "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
     "messages": [{"role": "user", "content": "List files"}]}

becomes::

    {"model": "gpt-5-codex", "stream": true, "reasoning": {"effort": "high", "summary": "auto"},
     "input": [{"type": "message", "role": "developer", "content": [{"type": "input_text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude."}]},
               {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files"}]}]}

``response()`` turns a final Response object into an Anthropic message and
``StreamTranslator`` (responses_to_anthropic_stream.py) turns Codex SSE into
Anthropic SSE. Reasoning comes back as a ``thinking`` block signed
``"openai:" + encrypted_content``; this module drops every thinking block on
the way in, so the blob never reaches either upstream.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from gateway.translate.responses_to_anthropic_stream import (
    StreamTranslator,
    anthropic_stop_reason,
    text_blocks,
    thinking_block,
    tool_use_block,
)
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import Target, Usage, budget_to_effort
from gateway.translate.tool_names import anthropic_tool_names, restoring_tool_names

__all__ = ["request", "response", "StreamTranslator", "prompt_cache_key"]

# Claude Code's first system block changes with each release and means
# nothing to a GPT model; dropping it also keeps the prompt prefix cacheable.
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


def request(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """Return the Responses body for an Anthropic Messages request.

    Dropped: max_tokens, stop_sequences, temperature, top_p, top_k,
    context_management, cache_control, server tools and every thinking block.
    Raises TranslationError when ``messages`` is not an array.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("messages: Field required", param="messages")
    items = _message("developer", _system_parts(body.get("system")))
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TranslationError(f"messages.{i}: must be an object", param=f"messages.{i}")
        items += _message_items(message)
    out: dict[str, Any] = {"model": target.model, "input": items, "stream": bool(body.get("stream"))}
    tools = [t for t in (_tool(t) for t in body.get("tools") or []) if t]
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = _tool_choice(choice)
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    reasoning = _reasoning(body)
    if reasoning:
        out["reasoning"] = reasoning
    fmt = (body.get("output_config") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out["text"] = {"format": {"type": "json_schema", "name": "output", "schema": fmt.get("schema") or {},
                                  "strict": False}}
    key = prompt_cache_key(body)
    if key:
        out["prompt_cache_key"] = key
    return out


def response(resp: dict[str, Any], client_body: dict[str, Any], model: str) -> dict[str, Any]:
    """Return the Anthropic message for a final Response object.

    >>> m = response({"id": "resp_1", "status": "completed", "output": [{"type": "function_call",
    ...     "call_id": "call_a1", "name": "ls", "arguments": "{\\"path\\":\\".\\"}"}]}, {}, "gpt-5")
    >>> m["id"], m["content"][0]["input"], m["stop_reason"]
    ('msg_resp_1', {'path': '.'}, 'tool_use')
    """
    names = restoring_tool_names(anthropic_tool_names(client_body))
    omit = (client_body.get("thinking") or {}).get("display") == "omitted"
    content: list[dict[str, Any]] = []
    for item in resp.get("output") or []:
        kind = item.get("type")
        if kind == "reasoning":
            block = thinking_block(item, omit)
            content += [block] if block else []
        elif kind == "message":
            content += text_blocks(item)
        elif kind in ("function_call", "custom_tool_call"):
            content.append(tool_use_block(item, names))
    has_call = any(b["type"] == "tool_use" for b in content)
    reason = (resp.get("incomplete_details") or {}).get("reason")
    return {
        "id": f"msg_{resp.get('id') or uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": anthropic_stop_reason(resp.get("status"), reason, has_call),
        "stop_sequence": None,
        "usage": Usage.from_responses(resp.get("usage")).to_anthropic(),
    }


def prompt_cache_key(body: dict[str, Any]) -> str | None:
    """A stable key from ``metadata.user_id`` (Claude Code's carries its session id).

    Hashed, so the id itself never leaves the gateway; shaped like the
    session UUID Codex CLI sends.
    """
    user_id = (body.get("metadata") or {}).get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    return str(uuid.UUID(bytes=hashlib.sha256(user_id.encode()).digest()[:16]))


# -- request helpers ---------------------------------------------------------

def _message(role: str, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "message", "role": role, "content": parts}] if parts else []


def _system_parts(system: Any) -> list[dict[str, Any]]:
    if isinstance(system, str):
        return [{"type": "input_text", "text": system}] if system.strip() else []
    parts = []
    for block in system if isinstance(system, list) else []:
        text = block.get("text") if isinstance(block, dict) else None
        if isinstance(text, str) and text.strip() and not text.startswith(BILLING_HEADER_PREFIX):
            parts.append({"type": "input_text", "text": text})
    return parts


def _message_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One Anthropic message -> Responses items, keeping block order.

    Text and images gather into message items; each tool_use / tool_result
    becomes its own item between them.
    """
    role = message.get("role")
    if role == "system":
        return _message("developer", _system_parts(message.get("content")))
    if role not in ("user", "assistant"):
        raise TranslationError(f"unexpected role {role!r}", param="messages.role")
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    items: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else []:
        item = _block_item(block) if isinstance(block, dict) else None
        if item is not None:
            items += _message(role, parts)
            parts = []
            items.append(item)
        elif isinstance(block, dict):
            parts += _block_parts(block, role)
    return items + _message(role, parts)


def _block_item(block: dict[str, Any]) -> dict[str, Any] | None:
    if block.get("type") == "tool_use":
        arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
        return {"type": "function_call", "call_id": str(block.get("id") or ""), "name": block.get("name") or "",
                "arguments": arguments}
    if block.get("type") == "tool_result":
        return {"type": "function_call_output", "call_id": str(block.get("tool_use_id") or ""),
                "output": _tool_output(block)}
    return None


def _block_parts(block: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Content parts for a text/image/document block; [] for anything dropped."""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text") or ""
        return [{"type": "output_text" if role == "assistant" else "input_text", "text": text}] if text.strip() else []
    if role != "user":
        return []  # thinking, redacted_thinking, server tool blocks
    if kind == "image":
        return _image(block.get("source") or {})
    if kind == "document":
        return _document(block)
    return []


def _image(source: dict[str, Any]) -> list[dict[str, Any]]:
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type') or 'image/png'};base64,{source.get('data') or ''}"
    elif source.get("type") == "url":
        url = source.get("url") or ""
    else:
        return []
    return [{"type": "input_image", "image_url": url, "detail": "auto"}]


def _document(block: dict[str, Any]) -> list[dict[str, Any]]:
    source = block.get("source") or {}
    if source.get("type") == "text":
        return [{"type": "input_text", "text": source.get("data") or ""}]
    filename = block.get("title") or "document.pdf"
    if source.get("type") == "base64":
        data_url = f"data:{source.get('media_type') or 'application/pdf'};base64,{source.get('data') or ''}"
        return [{"type": "input_file", "filename": filename, "file_data": data_url}]
    if source.get("type") == "url":
        return [{"type": "input_file", "file_url": source.get("url") or ""}]
    return []


def _tool_output(block: dict[str, Any]) -> str | list[dict[str, Any]]:
    """Text, or input_text/input_image parts when the result holds images.

    ``is_error`` has no Responses field, so the text gets an "Error: " prefix.
    """
    content = block.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    parts = [p for b in blocks if isinstance(b, dict) for p in _block_parts(b, "user")]
    if block.get("is_error"):
        first = parts[0] if parts and parts[0]["type"] == "input_text" else None
        if first:
            parts[0] = {**first, "text": "Error: " + first["text"]}
        else:
            parts.insert(0, {"type": "input_text", "text": "Error:"})
    if all(p["type"] == "input_text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _tool(tool: Any) -> dict[str, Any] | None:
    # Server tools (web_search_20250305, bash_20250124, ...) carry a versioned
    # type; only client tools (no type, or "custom") can run behind Codex.
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom") or not tool.get("name"):
        return None
    if tool.get("defer_loading") is True:
        # Loaded only through tool search, which Codex lacks: Claude Code marks its "never call this"
        # placeholder so, and a model that saw it as a plain function would call it.
        return None
    schema = dict(tool.get("input_schema") or {"type": "object"})
    if schema.get("type") == "object":
        schema.setdefault("properties", {})
    out: dict[str, Any] = {"type": "function", "name": tool["name"]}
    if tool.get("description"):
        out["description"] = tool["description"]
    out["parameters"] = schema
    out["strict"] = False
    return out


def _tool_choice(choice: dict[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "name": choice.get("name") or ""}
    return {"any": "required", "none": "none"}.get(str(kind), "auto")


def _reasoning(body: dict[str, Any]) -> dict[str, str] | None:
    """Thinking settings -> reasoning effort (PROTOCOLS.md §6.10).

    A manual budget maps by size; otherwise ``output_config.effort`` is used
    as given ("max" -> "xhigh"). With neither, reasoning is left out and
    codex_body's default (medium) applies: GPT models always reason, and
    "none" is not accepted by every Codex model.
    """
    thinking = body.get("thinking") or {}
    effort = (body.get("output_config") or {}).get("effort")
    if thinking.get("type") == "enabled":
        effort = budget_to_effort(thinking.get("budget_tokens"))
    if not effort or effort == "none":
        return None
    return {"effort": "xhigh" if effort == "max" else str(effort), "summary": "auto"}
