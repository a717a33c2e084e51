"""Building blocks for Anthropic Messages requests, shared by every ``*_to_anthropic`` translator.

A translator walks its client's messages, turns each into ``(role, blocks)``
with the block helpers here, and hands the list to :func:`normalize_turns`,
which enforces Anthropic's conversation rules (PROTOCOLS.md §6.11 items 2-6):

    [("user", [text "Hi"]), ("assistant", [tool_use call_a1]),
     ("user", [text "also"]), ("user", [tool_result call_a1])]
    -> [{"role": "user", ...}, {"role": "assistant", ...},
        {"role": "user", "content": [tool_result call_a1, text "also"]}]

The ``apply_*`` helpers then set the request parameters (thinking, sampling,
tool_choice) on the finished body, and :func:`finish_request` applies what the
API refuses while thinking is on (``thinking_rules``, shared with the Claude upstream).
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable, TypedDict

from gateway.translate import thinking_rules
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import EFFORT_TO_BUDGET, Target, adaptive_effort
from gateway.translate.thinking_rules import MIN_BUDGET
from gateway.translate.tool_names import ToolNames

Block = dict[str, Any]
Turn = tuple[str, list[Block]]


class Message(TypedDict):
    role: str
    content: list[Block]


IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MISSING_RESULT = "(no result)"
# Anthropic requires the conversation to open with a user turn (PROTOCOLS.md §6.11
# item 6); OpenAI formats allow an assistant greeting first. Neutral, as LiteLLM's.
CONVERSATION_START = "."
JSON_OBJECT_INSTRUCTION = "Respond only with a single valid JSON object. Do not add any other text."

_INVALID_ID = re.compile(r"[^A-Za-z0-9_-]")
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*),(?P<data>.*)$", re.DOTALL)


# -- blocks -------------------------------------------------------------------

def text_block(text: Any, cache_control: Any = None) -> Block | None:
    """A text block, or None for text Anthropic rejects (empty or whitespace only)."""
    if not isinstance(text, str) or not text.strip():
        return None
    block: Block = {"type": "text", "text": text}
    if cache_control:
        block["cache_control"] = cache_control
    return block


def parse_data_url(url: str) -> tuple[str, str]:
    """``data:image/png;base64,iVBO...`` -> ``("image/png", "iVBO...")``; TranslationError otherwise."""
    match = _DATA_URL.match(url)
    if not match or ";base64" not in (match["params"] or ""):
        raise TranslationError("only base64 data: URLs are supported")
    return (match["type"] or "application/octet-stream").lower(), match["data"].strip()


def image_block(url: Any) -> Block:
    """An image block from a ``data:`` URL (base64 source) or an http(s) URL (url source)."""
    if not isinstance(url, str) or not url:
        raise TranslationError("image part without a URL")
    if url.startswith("data:"):
        media_type, data = parse_data_url(url)
        if media_type == "image/jpg":
            media_type = "image/jpeg"
        if media_type not in IMAGE_MEDIA_TYPES:
            raise TranslationError(f"unsupported image type {media_type!r}")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError("image URL must be a data: or http(s) URL")


def pdf_block(file_data: Any = None, file_url: Any = None) -> Block:
    """A PDF document block from a base64 ``data:`` URL (or bare base64) or an https URL."""
    if isinstance(file_url, str) and file_url.startswith(("https://", "http://")):
        return {"type": "document", "source": {"type": "url", "url": file_url}}
    if not isinstance(file_data, str) or not file_data:
        raise TranslationError("only inline (file_data) or URL PDF files are supported")
    media_type, data = parse_data_url(file_data) if file_data.startswith("data:") else ("application/pdf", file_data)
    if media_type != "application/pdf":
        raise TranslationError(f"unsupported file type {media_type!r}: only PDF files can be sent")
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}


def sanitize_id(raw: Any) -> str:
    """A tool_use id Anthropic accepts (``^[A-Za-z0-9_-]+$``): other characters become ``_``."""
    cleaned = _INVALID_ID.sub("_", str(raw or ""))
    return cleaned or "toolu_" + hashlib.sha256(str(raw).encode()).hexdigest()[:24]


def parse_arguments(raw: Any, param: str = "arguments") -> dict[str, Any]:
    """A tool call's JSON-string arguments as an object: ``""`` -> ``{}``; invalid -> TranslationError."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        raise TranslationError(f"tool call arguments are not valid JSON: {str(raw)[:80]!r}", param=param) from None
    if not isinstance(value, dict):
        raise TranslationError("tool call arguments must be a JSON object", param=param)
    return value


def tool_use_block(call_id: Any, name: str, tool_input: dict[str, Any]) -> Block:
    return {"type": "tool_use", "id": sanitize_id(call_id), "name": name, "input": tool_input}


def tool_result_block(call_id: Any, content: str | list[Block], is_error: bool = False) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": sanitize_id(call_id)}
    if content:
        block["content"] = content
    if is_error:
        block["is_error"] = True
    return block


def input_schema(parameters: Any) -> dict[str, Any]:
    """An object JSON schema, as ``tools[].input_schema`` requires."""
    schema = dict(parameters) if isinstance(parameters, dict) else {}
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return schema


def custom_tool(name: str, description: Any, fmt: Any) -> dict[str, Any]:
    """A freeform (``custom``) tool for Claude: one string argument, ``input``; a grammar goes in the description."""
    text = description if isinstance(description, str) else ""
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and fmt.get("definition"):
        syntax = fmt.get("syntax") or "formal"
        text += f"\n\nThe input string must follow this {syntax} grammar:\n{fmt['definition']}"
    schema = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
    out: dict[str, Any] = {"name": name, "input_schema": schema}
    if text.strip():
        out["description"] = text.strip()
    return out


def custom_input(arguments: str) -> str:
    """The raw string of a freeform call: the ``input`` field of Claude's ``{"input": ...}`` JSON."""
    if not arguments:
        return ""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    raw = value.get("input") if isinstance(value, dict) else None
    return raw if isinstance(raw, str) else arguments


# -- conversation rules ---------------------------------------------------------

def normalize_turns(turns: Iterable[Turn]) -> list[Message]:
    """Merge, pair and clean raw turns into a valid Anthropic ``messages`` list.

    - empty turns are dropped and consecutive same-role turns merged;
    - every assistant ``tool_use`` gets its ``tool_result`` first in the next user
      turn, in call order; a missing one becomes an ``is_error`` "(no result)";
    - orphan and duplicate results are dropped; repeated tool_use ids are renamed;
    - a conversation that opens with the assistant gets a neutral user turn first.

    Raises TranslationError when no user turn is left.
    """
    messages = _merge(turns)
    paired: list[Message] = []
    seen: set[str] = set()
    calls: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if message["role"] == "user":
            paired.append({"role": "user", "content": _pair_results(message["content"], calls)})
            calls = []
            continue
        calls = _dedupe_tool_ids(message["content"], seen)
        paired.append(message)
        if calls and i + 1 == len(messages):
            paired.append({"role": "user", "content": _pair_results([], calls)})
    result = _merge((m["role"], m["content"]) for m in paired)
    if not any(m["role"] == "user" for m in result):
        raise TranslationError("the conversation has no user message")
    if result[0]["role"] == "assistant":
        result.insert(0, {"role": "user", "content": [{"type": "text", "text": CONVERSATION_START}]})
    return result


def _merge(turns: Iterable[Turn]) -> list[Message]:
    merged: list[Message] = []
    for role, blocks in turns:
        if not blocks:
            continue
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"].extend(blocks)
        else:
            merged.append({"role": role, "content": list(blocks)})
    return merged


def _dedupe_tool_ids(blocks: list[Block], seen: set[str]) -> list[tuple[str, str]]:
    """Rename tool_use ids used before; returns ``(client id, final id)`` in call order."""
    calls: list[tuple[str, str]] = []
    for i, block in enumerate(blocks):
        if block.get("type") != "tool_use":
            continue
        new_id, n = block["id"], 1
        while new_id in seen:
            n += 1
            new_id = f"{block['id']}_{n}"
        if new_id != block["id"]:
            blocks[i] = {**block, "id": new_id}
        seen.add(new_id)
        calls.append((block["id"], new_id))
    return calls


def _pair_results(blocks: list[Block], calls: list[tuple[str, str]]) -> list[Block]:
    """Results for ``calls`` first, in call order; orphans and duplicates dropped."""
    results: dict[str, Block] = {}
    others: list[Block] = []
    for block in blocks:
        if block.get("type") != "tool_result":
            others.append(block)
            continue
        free = [new for old, new in calls if old == block["tool_use_id"] and new not in results]
        if free:
            results[free[0]] = {**block, "tool_use_id": free[0]}
    missing = [tool_result_block(new, MISSING_RESULT, is_error=True) for _, new in calls]
    return [results.get(new, missing[i]) for i, (_, new) in enumerate(calls)] + others


def system_blocks(texts: Iterable[Block | None]) -> list[Block]:
    return [b for b in texts if b]


# -- request parameters -----------------------------------------------------------

def apply_reasoning(body: dict[str, Any], effort: Any, target: Target) -> None:
    """Turn an OpenAI ``reasoning effort`` into ``thinking`` (PROTOCOLS.md §6.10).

    Manual thinking raises ``max_tokens`` to budget + 1024 when the budget does
    not fit, but never above ``max(target.max_tokens, max_tokens)``; then the
    budget shrinks instead (never below 1024).
    """
    if effort is None or effort == "none":
        return
    if effort not in EFFORT_TO_BUDGET:
        raise TranslationError(f"unsupported reasoning effort {effort!r}", param="reasoning_effort")
    if target.adaptive_thinking:
        body["thinking"] = {"type": "adaptive"}
        body.setdefault("output_config", {})["effort"] = adaptive_effort(effort)
        return
    budget, max_tokens = EFFORT_TO_BUDGET[effort], int(body["max_tokens"])
    if budget >= max_tokens:
        limit = max(target.max_tokens, max_tokens)
        max_tokens = max(min(budget + MIN_BUDGET, limit), 2 * MIN_BUDGET)
        budget = min(budget, max_tokens - MIN_BUDGET)
    body["max_tokens"] = max_tokens
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def apply_sampling(body: dict[str, Any], temperature: Any, top_p: Any) -> None:
    """Copy temperature (clamped to Anthropic's 0..1) or, only without it, top_p."""
    if isinstance(temperature, (int, float)):
        body["temperature"] = min(max(float(temperature), 0.0), 1.0)
    elif isinstance(top_p, (int, float)):
        body["top_p"] = float(top_p)


def tool_choice(choice: Any, parallel: Any, names: ToolNames) -> dict[str, Any] | None:
    """Map a Chat or Responses ``tool_choice`` (+ ``parallel_tool_calls``) to Anthropic's.

    ``"required"`` -> any; ``{"type": "function", "name"|"function": ...}`` and
    ``{"type": "custom", "name"|"custom": ...}`` -> ``{"type": "tool", "name"}``; other objects -> auto.
    """
    result: dict[str, Any] | None = None
    if choice in ("auto", "none"):
        result = {"type": choice}
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict):
        name = choice.get("name") or (choice.get("function") or choice.get("custom") or {}).get("name")
        if choice.get("type") in ("function", "custom") and name:
            result = {"type": "tool", "name": names.upstream(_qualified(choice.get("namespace"), name))}
        else:
            result = {"type": "auto"}
    if parallel is False and (result is None or result["type"] != "none"):
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def _qualified(namespace: Any, name: str) -> str:
    return qualified_name(namespace, name) if namespace else name


def qualified_name(namespace: str, name: str) -> str:
    """The flat name of a namespaced tool: ``mcp__srv__`` + ``read`` -> ``mcp__srv__read``; ``crm__find``."""
    return f"{namespace}{name}" if namespace.endswith("_") else f"{namespace}__{name}"


def json_schema_format(schema: Any) -> dict[str, Any]:
    """``output_config.format`` for structured output."""
    return {"type": "json_schema", "schema": schema if isinstance(schema, dict) else {"type": "object"}}


def hashed_user(user: Any) -> str | None:
    """``metadata.user_id``: the client's user id, hashed so it stays opaque upstream."""
    if not isinstance(user, str) or not user:
        return None
    return hashlib.sha256(user.encode()).hexdigest()


def stop_sequences(stop: Any) -> list[str]:
    values = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    return [s for s in values if isinstance(s, str) and s.strip()]


def max_tokens(value: Any, target: Target) -> int:
    """The client's output cap, or the target's default when it sent none."""
    if value is None:
        return target.max_tokens
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TranslationError("the output token limit must be a positive integer", param="max_tokens")
    return value


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``: for optional nested client fields."""
    return value if isinstance(value, dict) else {}


def finish_request(body: dict[str, Any]) -> dict[str, Any]:
    """Run the rules that look at the whole body: thinking vs tool turns, then §1.5."""
    if thinking_rules.thinking_on(body) and thinking_rules.unsigned_tool_turn(body["messages"]):
        # The effort was apply_reasoning's, part of the thinking that goes.
        body = thinking_rules.without_effort(thinking_rules.thinking_off(body))
    return thinking_rules.enforce(thinking_rules.without_final_thinking(body))
