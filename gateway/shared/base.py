"""The shared-state interface: what every process (on every host) must agree on.

Two backends implement it: ``gateway.shared.redis_store`` (REDIS_URL set: each
operation is one atomic Lua script or command, one round trip) and
``gateway.shared.database`` (the project's database: a transaction serialised
per key by a Postgres advisory lock, or by SQLite's IMMEDIATE transactions).

Keys are plain strings chosen by the caller (``rpm:12``, ``sticky:claude:ab12``);
windows and TTLs are seconds. Errors of the store itself (Redis down, database
unreachable) propagate as ``SharedStateError``, so callers can fail open::

    SharedStateError
     └── raised for any failure of the store, with the original as __cause__
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import NamedTuple

# Longest sliding window the stores keep events for; older events are pruned.
MAX_WINDOW_SECONDS = 86400.0


class SharedStateError(Exception):
    """The shared store could not answer (connection refused, timeout, database error)."""


class Breaker:
    """After the store failed to answer, fail at once for a few seconds instead of waiting on it again:
    a store that is down (a connect timeout each time) must not slow every limited request."""

    def __init__(self, seconds: float = 2.0) -> None:
        self.seconds = seconds
        self.open_until = 0.0

    def check(self) -> None:
        if time.monotonic() < self.open_until:
            raise SharedStateError("shared state unreachable a moment ago; trying again shortly")

    def trip(self) -> None:
        self.open_until = time.monotonic() + self.seconds


@dataclass(frozen=True)
class Verdict:
    """The answer of a check-and-count: was it counted, what the window holds, when to retry."""

    allowed: bool
    used: int  # the window's total after this call (including this amount when allowed)
    retry_after: float = 0.0  # seconds until enough of the window has passed for ``amount`` to fit


class Rate(NamedTuple):
    """A sliding-window request rate: ``limit`` requests per ``window`` seconds under ``key``."""

    key: str
    limit: int
    window: float


class Slots(NamedTuple):
    """``limit`` concurrency slots under ``key``, each a lease of ``ttl`` seconds."""

    key: str
    limit: int
    ttl: float


@dataclass(frozen=True)
class Admission:
    """The answer of admit(): admitted or not, by which check, and what was read or taken."""

    allowed: bool
    refused_by: str = ""  # "rate", "slot", or the key of the counter at its limit
    retry_after: float = 0.0  # when the rate refused: seconds until a request fits
    holder: str | None = None  # the slot taken: release_slot() it when the request ends
    counters: dict[str, int] = field(default_factory=dict)  # every counter's value, read in the same step


class SharedState(ABC):
    """Atomic primitives shared by every process (generation bumps: gateway.shared.generations.bump())."""

    name: str

    @abstractmethod
    async def hit(self, key: str, limit: int, window: float, amount: int = 1) -> Verdict:
        """Count ``amount`` in the sliding ``window`` of ``key`` if the total stays within ``limit``.

        Exact across processes: with limit 20 and window 60, exactly 20 calls are
        allowed in any 60 seconds. A refused call counts nothing.
        """

    @abstractmethod
    async def admit(self, *, rate: Rate | None = None, slots: Slots | None = None,
                    counters: dict[str, int] | None = None) -> Admission:
        """Every check of one request in one atomic step (one round trip on Redis).

        ``counters`` maps a counter (tokens today, cost this month...) to its limit:
        refused while its value is at or past it. ``rate`` counts one request,
        ``slots`` takes a slot; neither happens unless every check passes.
        On Redis the keys of one call should live on one node (not a cluster).
        """

    @abstractmethod
    async def record(self, key: str, amount: int, window: float) -> int:
        """Count ``amount`` in the sliding window unconditionally (e.g. tokens after a response); the new total."""

    @abstractmethod
    async def window_total(self, key: str, window: float) -> int:
        """The sum counted in the last ``window`` seconds."""

    @abstractmethod
    async def add(self, key: str, amount: int, ttl: float | None = None) -> int:
        """Add to a counter (created at 0, or anew once its TTL lapsed); the new value.

        The TTL is set when the counter is created: a fixed window (tokens today)
        is a key naming the window, with a TTL a little past its end.
        """

    @abstractmethod
    async def numbers(self, keys: list[str]) -> dict[str, int]:
        """The counters' values in one round trip (0 for missing or lapsed ones)."""

    @abstractmethod
    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        """Take one of ``limit`` concurrency slots; a holder id to release, or None when all are taken.

        A slot lapses after ``ttl`` seconds unless renewed, so a crashed process's slots free themselves.
        """

    @abstractmethod
    async def renew_slot(self, key: str, holder: str, ttl: float) -> bool:
        """Extend a held slot's lease; False when it had lapsed already (and is gone)."""

    @abstractmethod
    async def release_slot(self, key: str, holder: str) -> None:
        """Give a slot back (nothing happens if it lapsed)."""

    @abstractmethod
    async def slots_held(self, key: str) -> int:
        """How many slots of ``key`` are held now."""

    @abstractmethod
    async def get(self, key: str, touch: float | None = None) -> str | None:
        """A map entry's value, or None; ``touch`` renews its TTL to that many seconds in the same step."""

    @abstractmethod
    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        """Set a map entry (replacing any), expiring after ``ttl`` seconds (None: never)."""

    @abstractmethod
    async def claim(self, key: str, value: str, ttl: float) -> bool:
        """Set the entry only if it is absent or lapsed: True for the one caller that set it."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove a map entry or counter."""

    async def generations(self, names: list[str]) -> dict[str, int]:
        """The current generation of each name, in one round trip."""
        values = await self.numbers([generation_key(n) for n in names])
        return {n: values[generation_key(n)] for n in names}

    @abstractmethod
    async def prune(self) -> None:
        """Drop lapsed entries (the database backend; Redis expires keys itself)."""

    @abstractmethod
    async def clear(self) -> None:
        """Forget everything this store holds for ProxyHub (tests)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close connections opened by this instance."""


def generation_key(name: str) -> str:
    return f"gen:{name}"
