"""Generation counters: how a change in one process empties the caches of every other.

A save or delete of an ApiKey, a catalog Model or a Credential bumps its
generation (after the transaction commits, see gateway.apps). Each process
polls the generations every PROXYHUB_SHARED_POLL_SECONDS in a background task
(proxyhub.background) and calls the callbacks subscribed to a name whose
generation moved: a revoked key or a disabled model is refused everywhere
within about that long, instead of after each cache's own lifetime.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from django.conf import settings
from django.db import transaction

from gateway.shared import backend
from gateway.shared.base import SharedState, SharedStateError

logger = logging.getLogger(__name__)

KEYS, CATALOG, CREDENTIALS = "keys", "catalog", "credentials"
NAMES = [KEYS, CATALOG, CREDENTIALS]
PRUNE_SECONDS = 60.0

_subscribers: dict[str, list[Callable[[], object]]] = {}


def subscribe(name: str, callback: Callable[[], object]) -> None:
    """Call ``callback`` (no arguments, quick, synchronous) in this process when ``name``'s generation moves."""
    callbacks = _subscribers.setdefault(name, [])
    if callback not in callbacks:
        callbacks.append(callback)


def bump(name: str) -> None:
    """Move ``name``'s generation on once the current transaction commits (at once outside one).

    Synchronous, for signal handlers. A store that cannot be reached is logged,
    not raised: the change itself is saved, and the caches' own lifetimes still bound staleness.
    """
    transaction.on_commit(lambda: _bump_now(name))


def _bump_now(name: str) -> None:
    try:
        if settings.REDIS_URL:
            from gateway.shared.redis_store import bump_generation

            bump_generation(settings.REDIS_URL, settings.PROXYHUB_REDIS_PREFIX, name)
        else:
            from gateway.shared.database import bump_generation as bump_in_database

            bump_in_database(name)
    except SharedStateError as exc:
        logger.warning("could not announce a change of %s to other processes: %s", name, exc)


def notify(name: str) -> None:
    """Run the callbacks of ``name`` in this process."""
    for callback in _subscribers.get(name, []):
        callback()


async def poll(seen: dict[str, int] | None, store: SharedState | None = None) -> dict[str, int]:
    """Read the generations once and notify every name that moved since ``seen`` (all names when None)."""
    current = await (store or backend()).generations(NAMES)
    for name in NAMES:
        if seen is None or current[name] != seen.get(name):
            notify(name)
    return current


async def watch(interval: float) -> None:
    """Poll forever (a background task per process); also prunes lapsed database entries now and then."""
    store = backend()  # chosen once: a process keeps one store for its lifetime
    seen: dict[str, int] | None = None
    failing = False
    pruned_at = time.monotonic()
    while True:
        try:
            seen = await poll(seen, store)
            if time.monotonic() - pruned_at > PRUNE_SECONDS:
                pruned_at = time.monotonic()
                await store.prune()
            if failing:
                logger.warning("shared state answers again; caches follow other processes' changes")
                failing = False
        except SharedStateError as exc:
            if not failing:
                logger.warning("shared state unreachable (%s); changes made elsewhere show after cache lifetimes", exc)
                failing = True
        except Exception:
            logger.exception("generation poll failed")
        await asyncio.sleep(interval)
