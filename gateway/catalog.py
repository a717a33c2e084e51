"""The model catalog, cached in-process: names and aliases to upstream targets.

Reloaded every few seconds, at once when a Model is saved in this process, and
within about a second when another process saved one (gateway.shared.generations).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections

from credentials.models import Model

TTL_SECONDS = 10.0
STALE_RETRY_SECONDS = 5.0  # while the database is unreachable, the last good catalog serves this much longer


@dataclass(frozen=True)
class Entry:
    name: str
    display_name: str
    provider: str
    upstream_model: str
    max_output_tokens: int
    adaptive_thinking: bool
    created_at: float


_by_name: dict[str, Entry] = {}
_entries: list[Entry] = []
_loaded_at = -1e9
_lock = asyncio.Lock()


def _load() -> list[tuple[Entry, list[str]]]:
    return [
        (Entry(m.name, m.display_name or m.name, m.provider, m.upstream_model, m.max_output_tokens,
               m.adaptive_thinking, m.created_at.timestamp()), list(m.aliases or []))
        for m in Model.objects.filter(enabled=True).order_by("provider", "name")
    ]


async def _refresh() -> None:
    global _by_name, _entries, _loaded_at
    async with _lock:
        if time.monotonic() - _loaded_at < TTL_SECONDS:
            return
        try:
            rows = await sync_to_async(_load)()
        except DatabaseError:
            await sync_to_async(close_old_connections)()  # a broken connection must not outlive the outage
            if not _entries:
                raise
            _loaded_at = time.monotonic() - TTL_SECONDS + STALE_RETRY_SECONDS
            return
        by_name: dict[str, Entry] = {}
        for entry, aliases in rows:
            by_name[entry.name] = entry
        for entry, aliases in rows:
            for alias in aliases:
                by_name.setdefault(str(alias), entry)
        _by_name, _entries, _loaded_at = by_name, [e for e, _ in rows], time.monotonic()


async def aresolve(name: str) -> Entry | None:
    """The catalog entry for a model name or alias, or None."""
    if time.monotonic() - _loaded_at >= TTL_SECONDS:
        await _refresh()
    return _by_name.get(name)


async def aentries() -> list[Entry]:
    if time.monotonic() - _loaded_at >= TTL_SECONDS:
        await _refresh()
    return list(_entries)


def invalidate(*args: object, **kwargs: object) -> None:
    global _loaded_at
    _loaded_at = -1e9
