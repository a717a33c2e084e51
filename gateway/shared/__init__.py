"""State every process and host must agree on: rate windows, counters, concurrency slots,
a map with expiry and generation counters. See base.SharedState for the primitives.

``backend()`` is Redis when REDIS_URL is set, else the database. The choice is
read from settings on each call (tests switch it), and a Redis backend is made
per event loop, because redis.asyncio's connections belong to the loop that opened them.
"""
from __future__ import annotations

import asyncio

from django.conf import settings

from gateway.shared.base import Admission, Rate, SharedState, SharedStateError, Slots, Verdict

__all__ = ["Admission", "Rate", "SharedState", "SharedStateError", "Slots", "Verdict", "backend", "aclose"]

_database: SharedState | None = None
_redis: dict[tuple[str, asyncio.AbstractEventLoop], SharedState] = {}


def _database_state() -> SharedState:
    global _database
    if _database is None:
        from gateway.shared.database import DatabaseState

        _database = DatabaseState()
    return _database


def backend() -> SharedState:
    """The shared store for the running event loop."""
    url = settings.REDIS_URL
    if not url:
        return _database_state()
    loop = asyncio.get_running_loop()
    state = _redis.get((url, loop))
    if state is None:
        from gateway.shared.redis_store import RedisState

        for stale in [k for k in _redis if k[1].is_closed()]:
            del _redis[stale]  # their connections died with their loop
        state = _redis[(url, loop)] = RedisState(url, settings.PROXYHUB_REDIS_PREFIX)
    return state


async def aclose() -> None:
    """Close this loop's Redis connections (at server shutdown)."""
    loop = asyncio.get_running_loop()
    for key in [k for k in _redis if k[1] is loop]:
        await _redis.pop(key).aclose()
