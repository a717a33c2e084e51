"""Prompt-cache breakpoints for requests translated to Anthropic (issue 10).

Anthropic caches a prompt only up to a block that carries ``cache_control``
(PROTOCOLS.md §1.2), and OpenAI-format clients have no way to say where. Without
marks every turn of a Chat or Responses conversation with Claude pays for the
whole window again. :func:`add_cache_marks` puts them where Claude Code does:

- the last tool (the prompt is hashed tools -> system -> messages);
- the last system block;
- the last cacheable block of the final message (writes the whole conversation);
- the last cacheable block of the user message before it: the final message of
  the previous request, so the next turn reads exactly what the last one wrote
  even when a tool loop added more than the API's 20-block look-back.

The API refuses more than four marks, so the client's own are counted first and
kept, and only what fits is added, most valuable first. A 5-minute mark may not
precede a 1-hour one, so nothing is added before the client's last 1-hour mark.
Pure: it edits the translated body in place.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAX_BREAKPOINTS = 4
EPHEMERAL = {"type": "ephemeral"}
# Anthropic refuses cache_control on these (they are cached as part of their turn).
_UNMARKABLE = ("thinking", "redacted_thinking")

Block = dict[str, Any]


def count_marks(body: dict[str, Any]) -> int:
    """Breakpoints already in the body: tools, system and message blocks (tool results' too)."""
    return sum(1 for block in _prefix_blocks(body) if block.get("cache_control") is not None)


def add_cache_marks(body: dict[str, Any]) -> dict[str, Any]:
    """Add Claude Code's breakpoints to ``body`` without going past four in total; returns ``body``."""
    blocks = list(_prefix_blocks(body))  # one walk of the history: this runs on every request
    marked = [n for n, block in enumerate(blocks) if block.get("cache_control") is not None]
    room = MAX_BREAKPOINTS - len(marked) - (1 if body.get("cache_control") is not None else 0)
    if room <= 0:
        return body
    floor = max((n for n in marked if _ttl(blocks[n]) == "1h"), default=-1)
    # positions matter only behind a client's 1-hour mark (rare); skip the index otherwise
    order = {id(block): n for n, block in enumerate(blocks)} if floor >= 0 else {}
    for block in _candidates(body):
        if room == 0:
            break
        if block is None or "cache_control" in block or (floor >= 0 and order.get(id(block), -1) <= floor):
            continue
        block["cache_control"] = dict(EPHEMERAL)
        room -= 1
    return body


def _candidates(body: dict[str, Any]) -> Iterator[Block | None]:
    """Where marks go, most valuable first: the newest turn, the system, the turn before, the tools."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    yield _last_markable(messages[-1]) if messages else None
    system = body.get("system")
    yield _last_of(system) if isinstance(system, list) else None
    earlier_users = [m for m in messages[:-1] if m.get("role") == "user"]
    yield _last_markable(earlier_users[-1]) if earlier_users else None
    tools = body.get("tools")
    yield _last_of(tools) if isinstance(tools, list) else None


def _last_markable(message: dict[str, Any]) -> Block | None:
    content = message.get("content")
    if not isinstance(content, list):
        return None
    return next((b for b in reversed(content) if isinstance(b, dict) and b.get("type") not in _UNMARKABLE), None)


def _last_of(items: list[Any]) -> Block | None:
    return items[-1] if items and isinstance(items[-1], dict) else None


def _ttl(block: Block) -> str | None:
    mark = block.get("cache_control")
    return str(mark.get("ttl") or "5m") if isinstance(mark, dict) else None


def _prefix_blocks(body: dict[str, Any]) -> Iterator[Block]:
    """Every block that may carry a mark, in the order Anthropic hashes the prompt."""
    for field in ("tools", "system"):
        items = body.get(field)
        if isinstance(items, list):
            yield from (b for b in items if isinstance(b, dict))
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            yield block
            inner = block.get("content") if block.get("type") == "tool_result" else None
            if isinstance(inner, list):
                yield from (b for b in inner if isinstance(b, dict))
