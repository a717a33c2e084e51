"""Scripted failures, queued by tests and consumed by the fake servers in order.

A fault targets one provider and either every caller (``token=None``) or
one access token (for token endpoints: one refresh token).  Each fault fires
``times`` times, then disappears.  The first matching fault in the queue wins.
Thread-safe: tests add faults from the main thread; handlers take them on the
servers' loop thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

KINDS: dict[str, frozenset[str]] = {
    "claude": frozenset(
        {
            "expired",
            "rate_limited",
            "overloaded",
            "server_error",
            "mid_stream_error",
            "drop_mid_stream",
            "slow",
            "http_error",
        }
    ),
    "codex": frozenset(
        {
            "expired",
            "usage_limit",
            "usage_not_included",
            "rate_limited",
            "bad_request",
            "empty_output",
            "failed",
            "drop_mid_stream",
            "slow",
            "server_error",
            "http_error",
        }
    ),
    # The subscription-usage endpoints (GET /api/oauth/usage, GET /backend-api/wham/usage).
    "claude_usage": frozenset({"expired", "rate_limited", "server_error", "http_error", "slow", "not_json"}),
    "codex_usage": frozenset({"expired", "rate_limited", "server_error", "http_error", "slow", "not_json"}),
    "claude_token": frozenset({"token_error", "token_slow"}),
    "codex_token": frozenset({"token_error", "token_slow"}),
}


@dataclass(frozen=True)
class Fault:
    kind: str
    opts: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Queued:
    provider: str
    kind: str
    token: str | None
    remaining: int
    opts: dict[str, Any]


class FaultBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []

    def add(self, provider: str, kind: str, *, token: str | None, times: int, opts: dict[str, Any]) -> None:
        """Queue a fault; unknown providers or kinds are a test bug, so raise."""
        if provider not in KINDS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {sorted(KINDS)}")
        if kind not in KINDS[provider]:
            raise ValueError(f"unknown fault kind {kind!r} for {provider}; expected one of {sorted(KINDS[provider])}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queue.append(_Queued(provider, kind, token, times, dict(opts)))

    def take(self, provider: str, token: str | None) -> Fault | None:
        """Consume one firing of the first fault matching provider and token."""
        with self._lock:
            for queued in self._queue:
                if queued.provider == provider and queued.token in (None, token):
                    queued.remaining -= 1
                    if queued.remaining == 0:
                        self._queue.remove(queued)
                    return Fault(queued.kind, dict(queued.opts))
        return None

    def pending(self, provider: str | None = None) -> int:
        """Firings still queued (for one provider, or all)."""
        with self._lock:
            return sum(q.remaining for q in self._queue if provider in (None, q.provider))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
