"""API key lookups cached in-process, so a warm key costs no database query.

Entries live PROXYHUB_KEY_CACHE_SECONDS; a save or delete of an ApiKey in this
process evicts it at once (see GatewayConfig.ready), so a revoke is immediate
here; other processes clear their caches when the keys generation moves
(gateway.shared.generations, about a second), and at the latest after the TTL.
"""
from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from accounts.services import KeyCheck, check_api_key, digest

_cache: dict[str, tuple[KeyCheck, float]] = {}
_MAX_ENTRIES = 10000
STALE_RETRY_SECONDS = 5.0  # while the database is unreachable, a known key is re-checked this often
MISSING = KeyCheck(None, "missing")


async def acheck(raw_key: str) -> KeyCheck:
    """See accounts.services.check_api_key(); refusals (revoked, expired, unknown) are cached too."""
    if not raw_key:
        return MISSING
    d = digest(raw_key)
    hit = _cache.get(d)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    try:
        check = await sync_to_async(check_api_key)(raw_key)
    except DatabaseError:
        await sync_to_async(close_old_connections)()  # a broken connection must not outlive the outage
        if hit is None:
            raise
        # The database is unreachable: keep serving a known key with its last good answer.
        _cache[d] = (hit[0], now + STALE_RETRY_SECONDS)
        return hit[0]
    if len(_cache) >= _MAX_ENTRIES:
        _cache.clear()
    _cache[d] = (check, now + settings.PROXYHUB_KEY_CACHE_SECONDS)
    return check


def evict(key_digest: str) -> None:
    _cache.pop(key_digest, None)


def clear() -> None:
    _cache.clear()
