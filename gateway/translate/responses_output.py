"""Responses-API output built from Claude's content, and the client's tool table.

Used by ``responses_to_anthropic`` (the JSON response) and ``anthropic_to_responses_stream`` (the stream).
One Anthropic block becomes one output item (PROTOCOLS.md §6.4):

    {"type": "thinking", "thinking": "Check ls", "signature": "EqQB..."}
    -> {"id": "rs_01XY_0", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Check ls"}],
        "encrypted_content": "anthropic:EqQB..."}
    {"type": "tool_use", "id": "toolu_01A", "name": "mcp__fs__read", "input": {"path": "a"}}
    -> {"id": "fc_01XY_1", "type": "function_call", "status": "completed", "call_id": "toolu_01A",
        "name": "read", "namespace": "mcp__fs__", "arguments": "{\\"path\\": \\"a\\"}"}

Each thinking block gets its own reasoning item, so every signature survives
the round trip; ``encrypted_content`` is the signature behind
``SIGNATURE_PREFIX`` (``REDACTED_PREFIX`` + data for redacted thinking).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypedDict

from gateway.translate import anthropic_build as build
from gateway.translate.mapping import ANTHROPIC_SIGNATURE_PREFIX
from gateway.translate.tool_names import ToolNames

SIGNATURE_PREFIX = ANTHROPIC_SIGNATURE_PREFIX
REDACTED_PREFIX = "anthropic-redacted:"

Item = dict[str, Any]


class OutputText(TypedDict):
    type: str
    text: str
    annotations: list[Any]


@dataclass(frozen=True)
class ClientTool:
    """A tool as the client declared it: its own name, its namespace, and whether it is freeform."""

    name: str
    namespace: str | None = None
    custom: bool = False


class ResponsesTools:
    """The client's Responses ``tools``, flattened for Claude and mapped back.

    Function and custom tools keep their names; a tool inside
    ``{"type": "namespace", "name": N, "tools": [...]}`` is offered to Claude as
    ``N + name`` when N ends with ``_`` (Codex's ``mcp__srv__`` + ``read``) and as
    ``N__name`` otherwise, so equal inner names in two namespaces stay apart.
    Hosted tools (``web_search``, ``local_shell``, ...) are dropped.
    """

    def __init__(self, tools: Any) -> None:
        self._specs: dict[str, tuple[ClientTool, dict[str, Any]]] = {}
        for tool in tools if isinstance(tools, list) else []:
            if isinstance(tool, dict) and tool.get("type") == "namespace":
                for inner in tool.get("tools") or []:
                    self._add(inner, tool.get("name") or None)
            elif isinstance(tool, dict):
                self._add(tool, None)
        self._names = ToolNames(self._specs)

    def _add(self, tool: dict[str, Any], namespace: str | None) -> None:
        if tool.get("type") in ("function", "custom") and tool.get("name"):
            client = ClientTool(tool["name"], namespace, tool["type"] == "custom")
            self._specs[build.qualified_name(namespace, client.name) if namespace else client.name] = (client, tool)

    @property
    def names(self) -> ToolNames:
        return self._names

    def upstream(self, name: str, namespace: Any = None) -> str:
        return self._names.upstream(build.qualified_name(namespace, name) if namespace else name)

    def client(self, upstream_name: str) -> ClientTool:
        flat = self._names.client(upstream_name)
        spec = self._specs.get(flat)
        return spec[0] if spec else ClientTool(flat)

    def definitions(self) -> list[dict[str, Any]]:
        """The Anthropic ``tools`` list; custom tools take one string, ``input``."""
        return [_definition(self._names.upstream(flat), c, t) for flat, (c, t) in self._specs.items()]


def _definition(name: str, client: ClientTool, tool: dict[str, Any]) -> dict[str, Any]:
    if client.custom:
        return build.custom_tool(name, tool.get("description"), tool.get("format"))
    out: dict[str, Any] = {"name": name, "input_schema": build.input_schema(tool.get("parameters"))}
    description = tool.get("description") or ""
    if description.strip():
        out["description"] = description.strip()
    return out


# -- items ------------------------------------------------------------------------

def output_text(text: str) -> OutputText:
    return {"type": "output_text", "text": text, "annotations": []}


def message_item(item_id: str, text: str | None, status: str = "completed") -> Item:
    content = [output_text(text)] if text is not None else []
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, block: dict[str, Any]) -> Item:
    """A reasoning item carrying the block's signature (or redacted data) in ``encrypted_content``."""
    if block.get("type") == "redacted_thinking":
        return {"id": item_id, "type": "reasoning", "summary": [], "encrypted_content": REDACTED_PREFIX + block.get("data", "")}
    text = block.get("thinking") or ""
    summary = [{"type": "summary_text", "text": text}] if text else []
    signature = block.get("signature")
    encrypted = SIGNATURE_PREFIX + signature if signature else None
    return {"id": item_id, "type": "reasoning", "summary": summary, "encrypted_content": encrypted}


def call_item(suffix: str, call_id: str, name: str, arguments: str, tools: ResponsesTools, status: str = "completed") -> Item:
    """A ``function_call`` (``fc_<suffix>``) or, for a freeform tool, a ``custom_tool_call``
    (``ctc_<suffix>``) from Claude's tool_use named ``name``.

    ``arguments`` is the input as a JSON string; ``""`` while it is still streaming.
    """
    client = tools.client(name)
    if client.custom:
        item: Item = {"id": f"ctc_{suffix}", "type": "custom_tool_call", "status": status, "call_id": call_id,
                      "name": client.name, "input": build.custom_input(arguments)}
    else:
        item = {"id": f"fc_{suffix}", "type": "function_call", "status": status, "call_id": call_id,
                "name": client.name, "arguments": arguments}
    if client.namespace:
        item["namespace"] = client.namespace
    return item


def output_items(blocks: list[dict[str, Any]], base: str, tools: ResponsesTools) -> list[Item]:
    """All output items for a finished message's content, in block order; empty text skipped."""
    items: list[Item] = []
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            items.append(message_item(f"msg_{base}_{i}", block["text"]))
        elif kind in ("thinking", "redacted_thinking"):
            items.append(reasoning_item(f"rs_{base}_{i}", block))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            items.append(call_item(f"{base}_{i}", block["id"], block["name"], arguments, tools))
    return items


# -- the response object ------------------------------------------------------------

def id_base(message_id: Any) -> str:
    """``msg_01XY`` -> ``01XY``: the suffix shared by the response id and its item ids."""
    text = build.sanitize_id(message_id)
    return text[4:] if text.startswith("msg_") else text


def response_object(
    response_id: str, created_at: int, model: str, client_body: dict[str, Any], *, status: str,
    output: list[Item], usage: dict[str, Any] | None, incomplete: Any = None, error: Any = None,
) -> dict[str, Any]:
    """A full Response object (PROTOCOLS.md §3.4), echoing the client's settings."""
    if usage is not None:  # current API versions always send it; the openai SDK's types require it
        usage["input_tokens_details"].setdefault("cache_write_tokens", 0)
    reasoning, text = build.as_dict(client_body.get("reasoning")), build.as_dict(client_body.get("text"))
    return {
        "id": response_id, "object": "response", "created_at": created_at, "status": status, "model": model,
        "output": output, "error": error, "incomplete_details": incomplete,
        "instructions": client_body.get("instructions"), "max_output_tokens": client_body.get("max_output_tokens"),
        "parallel_tool_calls": client_body.get("parallel_tool_calls", True), "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False, "temperature": client_body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, **text}, "tool_choice": client_body.get("tool_choice", "auto"),
        "tools": client_body.get("tools") or [], "top_p": client_body.get("top_p", 1.0),
        "truncation": client_body.get("truncation", "disabled"), "usage": usage,
        "metadata": client_body.get("metadata") or {},
    }


# Anthropic error type -> Responses error code (Codex retries rate_limit_exceeded
# and server_error, and gives up on context_length_exceeded).
_ERROR_CODES = {
    "rate_limit_error": "rate_limit_exceeded",
    "overloaded_error": "server_error",
    "api_error": "server_error",
    "timeout_error": "server_error",
    "invalid_request_error": "invalid_prompt",
    "request_too_large": "context_length_exceeded",
}


def error_code(error_type: str, message: str) -> str:
    if "prompt is too long" in message.lower() or "context window" in message.lower():
        return "context_length_exceeded"
    return _ERROR_CODES.get(error_type, error_type if error_type in _ERROR_CODES.values() else "server_error")
