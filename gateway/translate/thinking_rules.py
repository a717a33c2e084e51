"""What the Messages API refuses while thinking is on (PROTOCOLS.md §1.5, §6.11 items 8-9). Pure.

Written once for the two places that send Claude a body: the translators
(``anthropic_build.finish_request``, on the body they built) and the Claude
upstream (``claude_body.prepare``, on every body it sends for a client that is
not Claude Code itself). With thinking on the API rejects::

    {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 1000, "temperature": 0.2,
     "top_k": 5, "top_p": 0.5, "tool_choice": {"type": "tool", "name": "x"}}

so :func:`enforce` sends ``{"thinking": ..., "max_tokens": 3072, "tool_choice": {"type": "auto"}}``.
A last assistant turn that calls a tool must also open with its thinking block;
when it cannot (the client sent none back, or another provider's was dropped),
:func:`off_for_unsigned_tool_turn` turns thinking off for that request.

Every function returns a new dict and leaves its argument alone; unchanged
nested values are shared, not copied.
"""
from __future__ import annotations

from typing import Any

MIN_BUDGET = 1024  # the smallest budget_tokens the API takes
THINKING_TYPES = ("enabled", "adaptive")
THINKING_BLOCKS = ("thinking", "redacted_thinking")
# A context edit of this kind needs thinking on, so it goes when thinking does.
_CLEAR_THINKING = "clear_thinking"

Body = dict[str, Any]


def thinking_on(body: Body) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in THINKING_TYPES


def enforce(body: Body) -> Body:
    """``body`` without the parameters the API rejects: with thinking on, ``temperature``
    other than 1, ``top_k``, ``top_p`` below 0.95, a forced ``tool_choice`` (made ``auto``)
    and a manual budget not below ``max_tokens`` (``max_tokens`` raised to budget + 1024);
    with or without it, ``top_p`` next to ``temperature`` (§6.11 item 9: temperature wins)."""
    if not thinking_on(body):
        if "temperature" in body and "top_p" in body:
            body = {k: v for k, v in body.items() if k != "top_p"}
        return body
    thinking = body["thinking"]
    out = {k: v for k, v in body.items() if k != "top_k"}
    if out.get("temperature") not in (None, 1, 1.0):
        out.pop("temperature")
    if "top_p" in out and (out["top_p"] < 0.95 or "temperature" in out):
        out.pop("top_p")
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        out["tool_choice"] = {"type": "auto", **({"disable_parallel_tool_use": True}
                                                 if choice.get("disable_parallel_tool_use") else {})}
    budget = thinking.get("budget_tokens")
    if thinking.get("type") == "enabled" and isinstance(budget, int) and budget >= out.get("max_tokens", 0):
        out["max_tokens"] = budget + MIN_BUDGET
    return out


def unsigned_tool_turn(messages: Any) -> bool:
    """True when the last assistant turn holds ``tool_use`` but does not open with a thinking block.

    With thinking on, the API rejects such a turn ("a final assistant message must
    start with a thinking block"), and only the client could have sent that block.
    """
    if not isinstance(messages, list):
        return False
    last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "assistant"), None)
    content = last.get("content") if last else None
    if not isinstance(content, list) or not any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content):
        return False
    return not (isinstance(content[0], dict) and content[0].get("type") in THINKING_BLOCKS)


def off_for_unsigned_tool_turn(body: Body) -> Body:
    """``body`` with thinking off when its last tool turn cannot open with thinking (§6.11 item 8)."""
    if thinking_on(body) and unsigned_tool_turn(body.get("messages")):
        return thinking_off(body)
    return body


def thinking_off(body: Body) -> Body:
    """``body`` without ``thinking`` and without the ``clear_thinking`` context edits that need it."""
    out = {k: v for k, v in body.items() if k != "thinking"}
    management = out.get("context_management")
    if isinstance(management, dict) and isinstance(management.get("edits"), list):
        edits = [e for e in management["edits"]
                 if not (isinstance(e, dict) and str(e.get("type", "")).startswith(_CLEAR_THINKING))]
        if edits:
            out["context_management"] = {**management, "edits": edits}
        else:
            out.pop("context_management")
    return out


def without_effort(body: Body) -> Body:
    """``body`` without ``output_config.effort`` (and without ``output_config`` once it is empty)."""
    config = body.get("output_config")
    if not isinstance(config, dict) or "effort" not in config:
        return body
    out = dict(body)
    rest = {k: v for k, v in config.items() if k != "effort"}
    if rest:
        out["output_config"] = rest
    else:
        del out["output_config"]
    return out


def without_final_thinking(body: Body) -> Body:
    """With thinking off, a final (prefill) assistant message may not hold thinking blocks:
    they are dropped, and the message with them when nothing else is left."""
    messages = body["messages"]
    last = messages[-1]
    if thinking_on(body) or last["role"] != "assistant":
        return body
    kept = [b for b in last["content"] if b.get("type") not in THINKING_BLOCKS]
    if kept and len(kept) == len(last["content"]):
        return body
    return {**body, "messages": messages[:-1] + ([{**last, "content": kept}] if kept else [])}
