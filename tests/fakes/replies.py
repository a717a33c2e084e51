"""What the fake models "say": deterministic replies shared by both fakes.

Pure functions.  A request is first reduced to a provider-neutral
``Conversation`` (tools offered, last user text, trailing tool results,
whether thinking was asked for); ``decide()`` then picks the reply:

    last turn is tool results            -> text "Tool said: <results>"
    user text has "two tools" + tools    -> two parallel calls of the first tool
    user text has "tool" + tools         -> one call of the first tool
    otherwise                            -> text "Echo: <last user text>"

Thinking (Anthropic ``thinking`` enabled/adaptive, Codex reasoning effort not
"none") adds a thinking block / reasoning item first.  Usage numbers derive
from the request size so tests can predict them exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .prompt_cache import CacheUsage, prompt_tokens

THINKING_TEXT = "Thinking about it."
MAX_ECHO = 200
TOOL_CALL_TOKENS = 10
REASONING_TOKENS = 5
MAX_CACHED_TOKENS = 64
CUSTOM_INPUTS = ("*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch", "*** Begin Patch\n*** Add File: b.txt\n+yo\n*** End Patch")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    schema: dict[str, Any]
    custom: bool = False  # a Responses freeform tool (Codex's apply_patch): called with a raw string


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]
    custom_input: str | None = None  # set for a freeform tool's call


@dataclass(frozen=True)
class Conversation:
    """The parts of a request that decide the reply."""

    tools: tuple[ToolSpec, ...]
    last_user_text: str
    tool_results: tuple[str, ...]  # non-empty when the last turn answers tool calls
    thinking: str | None  # the thinking text to emit, None for no thinking
    parallel: bool  # False when the client disabled parallel tool calls
    tools_allowed: bool  # False for tool_choice "none"
    seed: str  # digest of the request, for stable ids


@dataclass(frozen=True)
class Reply:
    thinking: str | None
    text: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    truncated: bool = False  # Anthropic: cut at max_tokens


def request_seed(body: object) -> str:
    """Stable digest of a request body; ids derived from it differ per turn."""
    raw = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def stable_id(prefix: str, seed: str, n: int = 0) -> str:
    return prefix + hashlib.sha256(f"{prefix}{seed}:{n}".encode()).hexdigest()[:24]


def split_text(text: str, parts: int = 3) -> list[str]:
    """Cut ``text`` into up to ``parts`` pieces, at least two when it has 2+
    characters, so that clients are forced to join deltas."""
    if len(text) < 2:
        return [text]
    size = -(-len(text) // parts)
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- deciding --------------------------------------------------------------


def decide(conv: Conversation, call_prefix: str) -> Reply:
    """Pick the reply for a conversation (see the module docstring)."""
    if conv.tool_results:
        text = "Tool said: " + "; ".join(conv.tool_results)[:MAX_ECHO]
        return Reply(thinking=conv.thinking, text=text)
    lowered = conv.last_user_text.lower()
    if conv.tools and conv.tools_allowed and "tool" in lowered:
        count = 2 if "two tools" in lowered and conv.parallel else 1
        calls = tuple(_call(conv, call_prefix, n) for n in range(count))
        return Reply(thinking=conv.thinking, text=None, tool_calls=calls)
    text = "Echo: " + conv.last_user_text[:MAX_ECHO]
    return Reply(thinking=conv.thinking, text=text)


def _call(conv: Conversation, call_prefix: str, n: int) -> ToolCall:
    tool = conv.tools[0]
    return ToolCall(
        call_id=stable_id(call_prefix, conv.seed, n),
        name=tool.name,
        arguments={} if tool.custom else arguments_for(tool.schema, n),
        custom_input=CUSTOM_INPUTS[min(n, 1)] if tool.custom else None,
    )


def arguments_for(schema: dict[str, Any], variant: int = 0) -> dict[str, Any]:
    """Arguments filling the schema's required string properties.

    ``variant`` 1 gives different values, so two parallel calls are told apart.
    """
    properties = schema.get("properties") or {}
    args: dict[str, Any] = {}
    for name in schema.get("required") or []:
        prop = properties.get(name) or {}
        if prop.get("type") == "string":
            choices = ("Paris", "London") if name == "city" else ("x", "y")
            args[name] = choices[min(variant, 1)]
    return args


# --- Anthropic -------------------------------------------------------------


def anthropic_conversation(body: dict[str, Any]) -> Conversation:
    turns = [m for m in body.get("messages", []) if m.get("role") != "system"]
    last = turns[-1] if turns else {}
    results = _anthropic_results(last) if last.get("role") == "user" else ()
    choice = body.get("tool_choice") or {}
    return Conversation(
        tools=tuple(_anthropic_tools(body.get("tools") or [])),
        last_user_text=_last_anthropic_user_text(turns),
        tool_results=results,
        thinking=_anthropic_thinking(body.get("thinking")),
        parallel=not choice.get("disable_parallel_tool_use", False),
        tools_allowed=choice.get("type") != "none",
        seed=request_seed(body),
    )


def _anthropic_tools(tools: list[dict[str, Any]]) -> Iterator[ToolSpec]:
    # Server tools (typed, no input_schema) are not ours to call. Nor are deferred ones
    # (``defer_loading: true``): the real model sees them only once tool search loads them,
    # and Claude Code offers a DeferredToolPlaceholder of that kind ahead of its real tools.
    for tool in tools:
        if tool.get("type") in (None, "custom") and "input_schema" in tool and tool.get("defer_loading") is not True:
            yield ToolSpec(tool["name"], tool["input_schema"])


def _blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict)]


def _block_text(content: object) -> str:
    return " ".join(b.get("text", "") for b in _blocks(content) if b.get("type") == "text")


def _anthropic_results(message: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        _block_text(b.get("content", "")) for b in _blocks(message.get("content")) if b.get("type") == "tool_result"
    )


def _typed_text(text: str) -> bool:
    # Agents wrap context they add (<system-reminder>, <environment_context>) in
    # tags; the "model" answers what the person typed, so hand runs of Claude
    # Code or Codex CLI against the fakes don't spin on tool calls.
    return bool(text.strip()) and not text.lstrip().startswith("<")


def _last_anthropic_user_text(turns: list[dict[str, Any]]) -> str:
    for message in reversed(turns):
        if message.get("role") == "user":
            texts = [b.get("text", "") for b in _blocks(message.get("content")) if b.get("type") == "text"]
            typed = [t for t in texts if _typed_text(t)]
            if typed or texts:
                return " ".join(typed or texts)
    return ""


def _anthropic_thinking(thinking: object) -> str | None:
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return None
    # display "omitted" gets an empty thinking text that still carries a signature.
    return "" if thinking.get("display") == "omitted" else THINKING_TEXT


def anthropic_reply(body: dict[str, Any]) -> Reply:
    """The reply to a (valid) Messages request, cut at ``max_tokens``."""
    reply = decide(anthropic_conversation(body), "toolu_")
    limit = body.get("max_tokens")
    if reply.text is None or not isinstance(limit, int) or _text_tokens(reply.text) <= limit:
        return reply
    return Reply(thinking=reply.thinking, text=reply.text[: limit * 4], truncated=True)


def _text_tokens(text: str | None) -> int:
    return max(1, len(text or "") // 4)


def output_tokens(reply: Reply) -> int:
    return _text_tokens(reply.text) + TOOL_CALL_TOKENS * len(reply.tool_calls)


def anthropic_input_tokens(body: dict[str, Any]) -> int:
    """The whole prompt (tools, system, messages); also the answer of count_tokens, so tests can compare the two."""
    return prompt_tokens(body)


def anthropic_usage(body: dict[str, Any], reply: Reply, cache: CacheUsage | None = None) -> dict[str, int]:
    """Final (cumulative) usage; ``input_tokens`` excludes cache reads/writes (``cache``: the
    account's prompt cache's split of the prompt, prompt_cache.PromptCache.account)."""
    split = cache or CacheUsage(anthropic_input_tokens(body), 0, 0)
    return {
        "input_tokens": split.input_tokens,
        "cache_creation_input_tokens": split.cache_creation_input_tokens,
        "cache_read_input_tokens": split.cache_read_input_tokens,
        "output_tokens": output_tokens(reply),
    }


# --- Codex -----------------------------------------------------------------


def codex_conversation(body: dict[str, Any]) -> Conversation:
    items = [i for i in body.get("input", []) if isinstance(i, dict)]
    choice = body.get("tool_choice")
    return Conversation(
        tools=tuple(_codex_tools(body.get("tools") or [])),
        last_user_text=_last_codex_user_text(items),
        tool_results=_codex_results(items),
        thinking=THINKING_TEXT if codex_reasoning_requested(body) else None,
        parallel=body.get("parallel_tool_calls", True) is not False,
        tools_allowed=choice != "none",
        seed=request_seed(body),
    )


def codex_reasoning_requested(body: dict[str, Any]) -> bool:
    # Reasoning models think unless told "none"; the default effort is medium.
    reasoning = body.get("reasoning") or {}
    return bool(reasoning.get("effort", "medium") != "none")


def _codex_tools(tools: list[dict[str, Any]]) -> Iterator[ToolSpec]:
    for tool in tools:
        if tool.get("type") == "function":
            yield ToolSpec(tool["name"], tool.get("parameters") or {})
        elif tool.get("type") == "custom":
            yield ToolSpec(tool["name"], {}, custom=True)


def _codex_content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)


def _codex_results(items: list[dict[str, Any]]) -> tuple[str, ...]:
    trailing: list[str] = []
    for item in reversed(items):
        if item.get("type") not in ("function_call_output", "custom_tool_call_output"):
            break
        trailing.append(_codex_content_text(item.get("output", "")))
    return tuple(reversed(trailing))


def _last_codex_user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            # Per part, as on the Anthropic side: a translated Claude Code turn
            # carries its <system-reminder> block and the typed text in one message.
            content = item.get("content")
            parts = [content] if isinstance(content, str) else [_codex_content_text([p]) for p in content or []]
            typed = [text for text in parts if _typed_text(text)]
            if typed:
                return " ".join(typed)
    return ""


def codex_reply(body: dict[str, Any]) -> Reply:
    """The reply to a (valid) Codex Responses request."""
    return decide(codex_conversation(body), "call_")


def codex_usage(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """Responses usage: ``input_tokens`` includes cached, output includes reasoning."""
    input_tokens = max(1, len(json.dumps(body.get("input", []))) // 4)
    cached = min(MAX_CACHED_TOKENS, input_tokens) if "prompt_cache_key" in body else 0
    reasoning = REASONING_TOKENS if reply.thinking is not None else 0
    output = output_tokens(reply) + reasoning
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output,
    }
