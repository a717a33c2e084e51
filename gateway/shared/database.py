"""Shared state in the project's database (the backend when REDIS_URL is unset).

Check-then-insert steps (a sliding-window hit, taking a concurrency slot) run in
one transaction serialised per key: on Postgres by a transaction-scoped
advisory lock, whose statement also reads the database server's clock (one
clock for every host, so a window is exact across hosts); on SQLite by the
IMMEDIATE transactions the settings configure (one writer at a time, one host).
Single-statement steps are an INSERT ... ON CONFLICT or a conditional UPDATE.
Map entries, counters and leases expire by the process clock: hosts agree on it
to well within their TTLs (seconds to hours).

A concurrency slot costs a limited request two short writes (take, give back); on Postgres
neither waits for the disk at commit (a database crash may forget a lease taken or given
back in its last moment: a slot then stays taken until its lease lapses). Taking one is a
single conditional INSERT after the key's lock, giving it back a single DELETE.

Every call runs in asgiref's thread (sync_to_async), never on the event loop.
"""
from __future__ import annotations

import time
import uuid
import zlib
from typing import Any, Callable, TypeVar

from asgiref.sync import sync_to_async
from django.db import (
    Error as DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction,
)

from gateway.shared.base import (
    MAX_WINDOW_SECONDS, Admission, Breaker, Rate, SharedState, SharedStateError, Slots, Verdict, generation_key,
)
from gateway.shared.models import SharedEvent, SharedLease, SharedValue

T = TypeVar("T")

# Namespace of our advisory locks (the two-int form), apart from anyone else's.
_LOCK_CLASS = 0x7068
_VALUES = SharedValue._meta.db_table
_LEASES = SharedLease._meta.db_table


_breaker = Breaker()


def _guarded(fn: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any) -> T:
        try:
            return fn(*args)
        except DatabaseError as exc:
            if isinstance(exc, (OperationalError, InterfaceError)):
                _breaker.trip()
                close_old_connections()  # never reuse a broken connection
            raise SharedStateError(f"shared state in the database failed: {exc.__class__.__name__}") from exc
    return run


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    _breaker.check()
    return await sync_to_async(_guarded(fn))(*args)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _lock(key: str) -> float:
    """Serialise this transaction with every other one on ``key``; the time to count by."""
    if not _postgres():
        return time.time()  # SQLite: BEGIN IMMEDIATE already made this the only writer
    with connection.cursor() as cursor:
        # No wait for the disk at commit: a window's last events may be lost in a database crash (a limit
        # then lets a few more requests through), which is worth the fsync saved on every limited request.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s), extract(epoch from clock_timestamp())::float8, "
                       "set_config('synchronous_commit', 'off', true)",
                       [_LOCK_CLASS, zlib.crc32(key.encode()) - 2**31])
        return float(cursor.fetchone()[1])


def _now() -> float:
    if not _postgres():
        return time.time()
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch from clock_timestamp())::float8")
        return float(cursor.fetchone()[0])


def _retry_after(events: list[tuple[float, int]], used: int, amount: int, limit: int, now: float,
                 window: float) -> float:
    """Seconds until the oldest events leave the window and ``amount`` fits."""
    if amount > limit:
        return window
    for at, counted in events:  # oldest first
        used -= counted
        if used + amount <= limit:
            return max(at + window - now, 0.001)
    return window


def _events(key: str, after: float) -> list[tuple[float, int]]:
    return list(SharedEvent.objects.filter(key=key, at__gt=after).order_by("at", "id").values_list("at", "amount"))


def _hit(key: str, limit: int, window: float, amount: int) -> Verdict:
    with transaction.atomic():
        now = _lock(key)
        used = _sum(key, now - window)
        if used + amount > limit:
            return Verdict(False, used, _retry_after(_events(key, now - window), used, amount, limit, now, window))
        SharedEvent.objects.create(key=key, at=now, amount=amount)
        SharedEvent.objects.filter(key=key, at__lte=now - window).delete()
        return Verdict(True, used + amount)


def _admit(rate: Rate | None, slots: Slots | None, counters: dict[str, int]) -> Admission:
    with transaction.atomic():
        now = time.time()
        for key in sorted({c.key for c in (rate, slots) if c is not None}):  # one order: no deadlock
            locked_at = _lock(key)
            if rate is not None and key == rate.key:
                now = locked_at
        values = _numbers(list(counters))
        for key, limit in counters.items():
            if values[key] >= limit:
                return Admission(False, key, counters=values)
        if rate is not None:
            used = _sum(rate.key, now - rate.window)
            if used + 1 > rate.limit:
                retry = _retry_after(_events(rate.key, now - rate.window), used, 1, rate.limit, now, rate.window)
                return Admission(False, "rate", retry, counters=values)
        holder = None
        if slots is not None:
            holder = _take_slot(slots.key, slots.limit, slots.ttl)
            if holder is None:
                return Admission(False, "slot", counters=values)
        if rate is not None:
            SharedEvent.objects.create(key=rate.key, at=now, amount=1)
            SharedEvent.objects.filter(key=rate.key, at__lte=now - rate.window).delete()
        return Admission(True, holder=holder, counters=values)


def _record(key: str, amount: int, window: float) -> int:
    with transaction.atomic():
        now = _lock(key)
        SharedEvent.objects.create(key=key, at=now, amount=amount)
        SharedEvent.objects.filter(key=key, at__lte=now - window).delete()
        return _sum(key, now - window)


def _sum(key: str, after: float) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(amount), 0) FROM {SharedEvent._meta.db_table} WHERE key = %s AND at > %s",
                       [key, after])
        return int(cursor.fetchone()[0])


def _window_total(key: str, window: float) -> int:
    return _sum(key, _now() - window)


def _add(key: str, amount: int, ttl: float | None) -> int:
    now = time.time()
    expires = now + ttl if ttl is not None else None
    lapsed = f"{_VALUES}.expires_at IS NOT NULL AND {_VALUES}.expires_at <= %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_VALUES} (key, number, text, expires_at) VALUES (%s, %s, '', %s) "
            f"ON CONFLICT (key) DO UPDATE SET "
            f"number = CASE WHEN {lapsed} THEN excluded.number ELSE {_VALUES}.number + excluded.number END, "
            f"expires_at = CASE WHEN {lapsed} THEN excluded.expires_at ELSE {_VALUES}.expires_at END "
            f"RETURNING number",
            [key, amount, expires, now, now])
        return int(cursor.fetchone()[0])


def bump_generation(name: str) -> None:
    """Move a generation counter on; synchronous, for signal handlers."""
    _guarded(_add)(generation_key(name), 1, None)


def _numbers(keys: list[str]) -> dict[str, int]:
    now = time.time()
    found = {k: n for k, n, exp in SharedValue.objects.filter(key__in=keys).values_list("key", "number", "expires_at")
             if exp is None or exp > now}
    return {k: int(found.get(k, 0)) for k in keys}


def _take_slot(key: str, limit: int, ttl: float) -> str | None:
    """Insert a lease when fewer than ``limit`` live ones are held: a holder id, or None. The caller's
    transaction holds the key's lock, so no other process counts and inserts in between."""
    now = time.time()
    holder = uuid.uuid4().hex
    # Only live leases count: a lapsed one (its process died) frees its slot even before it is deleted.
    take = (f"INSERT INTO {_LEASES} (key, holder, expires_at) SELECT %s, %s, %s "
            f"WHERE (SELECT COUNT(*) FROM {_LEASES} WHERE key = %s AND expires_at > %s) < %s RETURNING holder")
    args = [key, holder, now + ttl, key, now, limit]
    with connection.cursor() as cursor:
        if _postgres():
            # The key's lapsed leases are dropped in the same statement: one round trip. Every part of it
            # sees the same snapshot, taken after the lock (READ COMMITTED: a snapshot per statement).
            cursor.execute(f"WITH lapsed AS (DELETE FROM {_LEASES} WHERE key = %s AND expires_at <= %s) {take}",
                           [key, now, *args])
        else:
            cursor.execute(f"DELETE FROM {_LEASES} WHERE key = %s AND expires_at <= %s", [key, now])
            cursor.execute(take, args)
        return holder if cursor.fetchone() is not None else None


def _acquire_slot(key: str, limit: int, ttl: float) -> str | None:
    with transaction.atomic():
        _lock(key)
        return _take_slot(key, limit, ttl)


def _renew_slot(key: str, holder: str, ttl: float) -> bool:
    now = time.time()
    return SharedLease.objects.filter(key=key, holder=holder, expires_at__gt=now).update(expires_at=now + ttl) == 1


def _release_slot(key: str, holder: str) -> None:
    with connection.cursor() as cursor:
        if _postgres():
            # One statement, its own transaction, committed without waiting for the disk (set_config's
            # "local" lasts until this statement's commit): the fsync was most of a release's cost.
            cursor.execute(f"WITH quick AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) "
                           f"DELETE FROM {_LEASES} WHERE key = %s AND holder = %s AND EXISTS (SELECT FROM quick)",
                           [key, holder])
        else:
            cursor.execute(f"DELETE FROM {_LEASES} WHERE key = %s AND holder = %s", [key, holder])


def _slots_held(key: str) -> int:
    return SharedLease.objects.filter(key=key, expires_at__gt=time.time()).count()


def _get(key: str, touch: float | None) -> str | None:
    now = time.time()
    if touch is None:
        row = SharedValue.objects.filter(key=key).values_list("text", "expires_at").first()
        return row[0] if row is not None and (row[1] is None or row[1] > now) else None
    with connection.cursor() as cursor:
        # One statement: renew the lease of a live entry and read it.
        cursor.execute(
            f"UPDATE {_VALUES} SET expires_at = %s "
            f"WHERE key = %s AND (expires_at IS NULL OR expires_at > %s) RETURNING text",
            [now + touch, key, now])
        row = cursor.fetchone()
        return str(row[0]) if row is not None else None


def _put(key: str, value: str, ttl: float | None) -> None:
    expires = time.time() + ttl if ttl is not None else None
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_VALUES} (key, number, text, expires_at) VALUES (%s, 0, %s, %s) "
            f"ON CONFLICT (key) DO UPDATE SET text = excluded.text, expires_at = excluded.expires_at",
            [key, value, expires])


def _claim(key: str, value: str, ttl: float) -> bool:
    now = time.time()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_VALUES} (key, number, text, expires_at) VALUES (%s, 0, %s, %s) "
            f"ON CONFLICT (key) DO UPDATE SET text = excluded.text, number = 0, expires_at = excluded.expires_at "
            f"WHERE {_VALUES}.expires_at IS NOT NULL AND {_VALUES}.expires_at <= %s",
            [key, value, now + ttl, now])
        return cursor.rowcount == 1


def _delete(key: str) -> None:
    SharedValue.objects.filter(key=key).delete()


def _prune() -> None:
    now = time.time()
    SharedValue.objects.filter(expires_at__lte=now).delete()
    SharedLease.objects.filter(expires_at__lte=now).delete()
    SharedEvent.objects.filter(at__lte=_now() - MAX_WINDOW_SECONDS).delete()


def _clear() -> None:
    for model in (SharedValue, SharedEvent, SharedLease):
        model.objects.all().delete()


class DatabaseState(SharedState):
    """See gateway.shared.base.SharedState; the tables are in gateway.shared.models."""

    name = "database"

    async def hit(self, key: str, limit: int, window: float, amount: int = 1) -> Verdict:
        return await _in_thread(_hit, key, limit, window, amount)

    async def admit(self, *, rate: Rate | None = None, slots: Slots | None = None,
                    counters: dict[str, int] | None = None) -> Admission:
        return await _in_thread(_admit, rate, slots, dict(counters or {}))

    async def record(self, key: str, amount: int, window: float) -> int:
        return await _in_thread(_record, key, amount, window)

    async def window_total(self, key: str, window: float) -> int:
        return await _in_thread(_window_total, key, window)

    async def add(self, key: str, amount: int, ttl: float | None = None) -> int:
        return await _in_thread(_add, key, amount, ttl)

    async def numbers(self, keys: list[str]) -> dict[str, int]:
        return await _in_thread(_numbers, keys)

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        return await _in_thread(_acquire_slot, key, limit, ttl)

    async def renew_slot(self, key: str, holder: str, ttl: float) -> bool:
        return await _in_thread(_renew_slot, key, holder, ttl)

    async def release_slot(self, key: str, holder: str) -> None:
        await _in_thread(_release_slot, key, holder)

    async def slots_held(self, key: str) -> int:
        return await _in_thread(_slots_held, key)

    async def get(self, key: str, touch: float | None = None) -> str | None:
        return await _in_thread(_get, key, touch)

    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        await _in_thread(_put, key, value, ttl)

    async def claim(self, key: str, value: str, ttl: float) -> bool:
        return await _in_thread(_claim, key, value, ttl)

    async def delete(self, key: str) -> None:
        await _in_thread(_delete, key)

    async def prune(self) -> None:
        await _in_thread(_prune)

    async def clear(self) -> None:
        await _in_thread(_clear)

    async def aclose(self) -> None:
        return None
