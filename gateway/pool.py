"""Credential choice: a pure choose() over an in-process snapshot, and async acquire().

The snapshot of active credentials is reloaded every SNAPSHOT_SECONDS, so a
cooldown or status change written by another process is seen within that time;
changes made here apply to the snapshot at once.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Sequence

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from credentials import services, window_state
from credentials.models import Credential
from gateway import shared

SNAPSHOT_SECONDS = 2.0


class NoCredentialError(Exception):
    """No credential can serve now. ``retry_after`` is set when all are cooling down."""

    def __init__(self, provider: str, retry_after: float | None, connected: bool,
                 groups: Sequence[str] = ()) -> None:
        super().__init__(provider)
        self.provider = provider
        self.retry_after = retry_after
        self.connected = connected
        self.groups = tuple(groups)  # the key's account groups, when it is bound to some


@dataclass(frozen=True)
class Choice:
    """How to pick: the strategy, the rotation turn, an optional conversation key."""

    strategy: str = "round-robin"  # round-robin | priority | sticky | headroom
    turn: int = 0
    conversation: str = ""
    prefer_soonest_reset: bool = False
    # Read when the Choice is built, so every caller gets the setting without passing it.
    max_utilization: float = field(default_factory=lambda: float(settings.PROXYHUB_POOL_MAX_UTILIZATION))


def choose(candidates: Sequence[Credential], now: datetime, exclude: set[int], how: Choice) -> Credential | None:
    """Pick one usable credential not in ``exclude``, or None.

    ``priority`` fills the highest-priority account first. ``sticky`` keeps a
    conversation on one account (rendezvous hashing: the same answer in every
    process, and only that conversation's share moves when its account cools
    down). ``headroom`` takes the account with the most room left in its
    binding window (its fullest one). ``prefer_soonest_reset`` spends the
    account whose window resets soonest first, since its remaining quota is
    lost at the reset anyway. Whatever the strategy, an account past
    ``max_utilization`` percent of a window is kept for when no other is ready.
    """
    usable = [c for c in candidates if c.pk not in exclude and c.is_usable(now)]
    if not usable:
        return None
    moment = now.timestamp()
    used = {c.pk: window_state.binding_percent(c.windows, moment) or 0.0 for c in usable}
    usable = [c for c in usable if used[c.pk] <= how.max_utilization] or usable
    if how.strategy == "headroom":
        least = min(used[c.pk] for c in usable)
        usable = [c for c in usable if used[c.pk] == least]
    if how.strategy == "priority":
        top = max(c.priority for c in usable)
        usable = [c for c in usable if c.priority == top]
    if how.prefer_soonest_reset:
        soonest = min(_next_reset(c) for c in usable)
        usable = [c for c in usable if _next_reset(c) == soonest]
    if how.strategy == "sticky" and how.conversation:
        return max(usable, key=lambda c: hashlib.sha256(f"{how.conversation}:{c.pk}".encode()).digest())
    if how.strategy == "priority":
        return min(usable, key=lambda c: c.pk)
    return usable[how.turn % len(usable)]


def _next_reset(credential: Credential) -> float:
    resets = [w.get("reset") for w in (credential.windows or {}).values() if isinstance(w, dict) and w.get("reset")]
    return min(resets) if resets else float("inf")


@dataclass
class _ProviderState:
    credentials: list[Credential] = field(default_factory=list)
    loaded_at: float = -1e9
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    turns: itertools.count = field(default_factory=itertools.count)


_state: dict[str, _ProviderState] = {}


async def _snapshot(provider: str) -> list[Credential]:
    state = _state.setdefault(provider, _ProviderState())
    if time.monotonic() - state.loaded_at >= SNAPSHOT_SECONDS:
        async with state.lock:
            if time.monotonic() - state.loaded_at >= SNAPSHOT_SECONDS:
                try:
                    state.credentials = await sync_to_async(services.usable)(provider)
                except DatabaseError:
                    await sync_to_async(close_old_connections)()  # never reuse a broken connection
                    if not state.credentials:
                        raise
                    # The database is unreachable: the last good snapshot serves until the next try.
                state.loaded_at = time.monotonic()
    return state.credentials


async def snapshot(provider: str) -> list[Credential]:
    """The active credentials of ``provider`` as this process last loaded them (at most SNAPSHOT_SECONDS old)."""
    return await _snapshot(provider)


def in_groups(credentials: Sequence[Credential], groups: Sequence[str]) -> list[Credential]:
    """The credentials in any of ``groups``; all of them when ``groups`` is empty (a key bound to none)."""
    if not groups:
        return list(credentials)
    wanted = set(groups)
    return [c for c in credentials if wanted.intersection(c.groups or ())]


async def acquire(provider: str, exclude: set[int], conversation: str = "", groups: Sequence[str] = ()) -> Credential:
    """A credential to try next, from ``groups`` when given (failover stays inside them);
    raises NoCredentialError when none can serve."""
    credentials = in_groups(await _snapshot(provider), groups)
    now = timezone.now()
    how = Choice(settings.PROXYHUB_POOL_STRATEGY, next(_state[provider].turns), conversation,
                 settings.PROXYHUB_POOL_PREFER_SOONEST_RESET)
    if how.strategy == "sticky" and conversation:
        chosen = await _sticky_choice(provider, credentials, now, exclude, how)
    else:
        chosen = choose(credentials, now, exclude, how)
    if chosen is not None:
        return chosen
    if not credentials:
        connected = await sync_to_async(services.connected_count)(provider) > 0
        raise NoCredentialError(provider, None, connected=connected, groups=groups)
    cooling = [c.cooldown_until for c in credentials if c.cooldown_until and c.cooldown_until > now]
    retry_after = max((min(cooling) - now).total_seconds(), 1.0) if cooling else None
    raise NoCredentialError(provider, retry_after, connected=True, groups=groups)


def sticky_key(provider: str, conversation: str) -> str:
    return f"sticky:{provider}:{hashlib.sha256(conversation.encode()).hexdigest()[:32]}"


async def _sticky_choice(provider: str, credentials: Sequence[Credential], now: datetime, exclude: set[int],
                         how: Choice) -> Credential | None:
    """The conversation's account from the shared map (any process may have set it) while it can serve;
    else the rendezvous choice, remembered, so the conversation stays there after its first account recovers."""
    key = sticky_key(provider, how.conversation)
    store = shared.backend()
    try:
        remembered = await store.get(key, touch=settings.PROXYHUB_STICKY_TTL)
    except shared.SharedStateError:
        return choose(credentials, now, exclude, how)  # the map is away: rendezvous hashing alone
    for credential in credentials:
        if str(credential.pk) == remembered and credential.pk not in exclude and credential.is_usable(now):
            return credential
    chosen = choose(credentials, now, exclude, how)
    if chosen is not None:
        try:
            await store.put(key, str(chosen.pk), settings.PROXYHUB_STICKY_TTL)
        except shared.SharedStateError:
            pass
    return chosen


async def cool_down(credential: Credential, seconds: float, reason: str) -> None:
    until = timezone.now() + timedelta(seconds=seconds)
    if credential.cooldown_until is None or credential.cooldown_until < until:
        credential.cooldown_until = until
        credential.cooldown_reason = reason
    await sync_to_async(services.start_cooldown)(credential.pk, until, reason)


async def take_out(credential: Credential, status: str, reason: str) -> None:
    """Remove a credential from service (needs re-login or disabled)."""
    credential.status = status
    fn = services.mark_needs_relogin if status == Credential.Status.NEEDS_RELOGIN else services.disable
    await sync_to_async(fn)(credential.pk, reason)
    forget(credential)


def forget(credential: Credential) -> None:
    """Drop a credential taken out of service from this process's snapshot (its DB row says why)."""
    state = _state.get(credential.provider)
    if state is not None:
        state.credentials = [c for c in state.credentials if c.pk != credential.pk]


def replace(credential: Credential) -> None:
    """Put a refreshed copy of a credential into the snapshot."""
    state = _state.get(credential.provider)
    if state is not None:
        state.credentials = [credential if c.pk == credential.pk else c for c in state.credentials]


def invalidate(provider: str | None = None) -> None:
    for name, state in _state.items():
        if provider is None or name == provider:
            state.loaded_at = -1e9
