"""The fake Anthropic API's prompt cache: what it reads and writes for a request, per account.

As the real API accounts it (PROTOCOLS.md §1.2, §1.7; Anthropic's prompt-caching docs):

- The prompt is a sequence of blocks in the order it is hashed: each tool, each
  system block, then each message's content blocks. ``cache_control`` itself is
  not part of the key, so moving a mark does not change what is cached.
- A mark makes a breakpoint. After the request, the prefix up to every
  breakpoint is cached for its TTL (5 minutes, or 1 hour), if it has at least
  ``MIN_CACHEABLE_TOKENS``; shorter prefixes are silently not cached.
- A read is the longest cached prefix ending at a block boundary no more than
  ``LOOKBACK_BLOCKS`` before a breakpoint; a hit refreshes that entry's TTL.
- ``cache_read_input_tokens`` is that prefix, ``cache_creation_input_tokens``
  the rest up to the last breakpoint, ``input_tokens`` what follows it.

Tokens are the fake's usual estimate, a quarter of the JSON characters, counted
over the growing prefix so that the three parts always add up to the whole.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

MIN_CACHEABLE_TOKENS = 1024  # Sonnet's minimum; the real one varies by model (more for Opus and Haiku)
LOOKBACK_BLOCKS = 20
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True)
class CacheUsage:
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


@dataclass(frozen=True)
class _Prompt:
    hashes: list[str]  # hashes[k]: the prefix through block k
    tokens: list[int]  # tokens[k]: the prefix through block k
    marks: dict[int, float]  # block index -> TTL of its breakpoint


def prompt_tokens(body: dict[str, Any]) -> int:
    """The whole prompt: tools, system and messages (also the count_tokens answer)."""
    prompt = _prompt(body)
    return prompt.tokens[-1] if prompt.tokens else 1


@dataclass
class PromptCache:
    """Cached prefixes per account: ``{account: {prefix hash: expiry}}``."""

    _entries: dict[str, dict[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def account(self, body: dict[str, Any], account: str, now: float | None = None) -> CacheUsage:
        """Look the request's prefixes up, store its breakpoints, and say how its input splits."""
        now = time.time() if now is None else now
        prompt = _prompt(body)
        total = prompt.tokens[-1] if prompt.tokens else 1
        if not prompt.marks:
            return CacheUsage(total, 0, 0)
        last = max(prompt.marks)
        with self._lock:
            entries = self._entries.setdefault(account, {})
            read_at = self._longest_hit(prompt, entries, now)
            if read_at is not None:
                entries[prompt.hashes[read_at]] = max(entries[prompt.hashes[read_at]], now + TTL_SECONDS["5m"])
            for index, ttl in prompt.marks.items():
                if prompt.tokens[index] >= MIN_CACHEABLE_TOKENS:
                    key = prompt.hashes[index]
                    entries[key] = max(entries.get(key, 0.0), now + ttl)
        read = prompt.tokens[read_at] if read_at is not None else 0
        written = prompt.tokens[last] - read if prompt.tokens[last] >= MIN_CACHEABLE_TOKENS else 0
        written = max(written, 0)
        return CacheUsage(total - read - written, written, read)

    @staticmethod
    def _longest_hit(prompt: _Prompt, entries: dict[str, float], now: float) -> int | None:
        best: int | None = None
        for mark in prompt.marks:
            for index in range(mark, max(-1, mark - LOOKBACK_BLOCKS - 1), -1):
                if entries.get(prompt.hashes[index], 0.0) > now:
                    if best is None or index > best:
                        best = index
                    break  # the longest hit behind this breakpoint
        return best


def _prompt(body: dict[str, Any]) -> _Prompt:
    hashes: list[str] = []
    tokens: list[int] = []
    marks: dict[int, float] = {}
    digest, chars = hashlib.sha256(), 0
    for segment, ttl in _segments(body):
        text = json.dumps(segment, sort_keys=True, separators=(",", ":"))
        digest.update(text.encode())
        chars += len(text)
        hashes.append(digest.copy().hexdigest())
        tokens.append(max(1, chars // 4))
        if ttl is not None:
            marks[len(hashes) - 1] = ttl
    return _Prompt(hashes, tokens, marks)


def _segments(body: dict[str, Any]) -> list[tuple[Any, float | None]]:
    """(block without its marks, TTL of a mark in it or None), in hashing order."""
    out: list[tuple[Any, float | None]] = []
    for tool in body.get("tools") or []:
        out.append(_unmarked(("tool", tool)))
    system = body.get("system")
    for block in [{"type": "text", "text": system}] if isinstance(system, str) else system or []:
        out.append(_unmarked(("system", block)))
    for message in body.get("messages") or []:
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for j, block in enumerate(blocks):
            # the role opens each message, so the same text as a user or an assistant turn differs
            out.append(_unmarked((message.get("role") if j == 0 else "", block)))
    return out


def _unmarked(segment: tuple[Any, Any]) -> tuple[Any, float | None]:
    ttl: list[float] = []

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            mark = node.get("cache_control")
            if isinstance(mark, dict):
                ttl.append(TTL_SECONDS.get(str(mark.get("ttl") or "5m"), TTL_SECONDS["5m"]))
            return {k: strip(v) for k, v in node.items() if k != "cache_control"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(list(segment)), (max(ttl) if ttl else None)
