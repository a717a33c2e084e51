"""Shared state in Redis (the backend when REDIS_URL is set).

Every operation is one command or one Lua script, so it is atomic and costs one
round trip. Scripts read the Redis server's clock (TIME): one clock for every
host. Redis expires keys itself; the keys of one script share a hash tag
(``proxyhub:{rpm:12}`` and ``proxyhub:{rpm:12}:sum``), so they also work on a cluster.

A sliding window is a sorted set of ``<id>:<amount>`` members scored by time,
plus a running sum beside it (so a check never adds up the whole set).
Concurrency slots are a sorted set of holder ids scored by their lease's end.
"""
from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any, Awaitable, TypeVar

import redis
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError, RedisError, TimeoutError as RedisTimeoutError

from gateway.shared.base import Admission, Breaker, Rate, SharedState, SharedStateError, Slots, Verdict, generation_key

T = TypeVar("T")

_CLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# Lua helpers for a sliding window: what it holds now (dropping what left it), when ``amount`` fits, counting.
_WINDOW_FUNCTIONS = """
local function amount_of(member) return tonumber(string.match(member, ':(%d+)$')) end
local function window_used(set, sumkey, window)
  local cutoff = now - window
  local gone = redis.call('ZRANGEBYSCORE', set, '-inf', cutoff)
  if #gone > 0 then
    local dropped = 0
    for _, m in ipairs(gone) do dropped = dropped + amount_of(m) end
    redis.call('ZREMRANGEBYSCORE', set, '-inf', cutoff)
    redis.call('DECRBY', sumkey, dropped)
  end
  if redis.call('ZCARD', set) == 0 then
    redis.call('DEL', sumkey)
    return 0
  end
  local stored = redis.call('GET', sumkey)
  if stored then return tonumber(stored) end
  local used = 0  -- the sum was lost (evicted): count it again
  for _, m in ipairs(redis.call('ZRANGE', set, 0, -1)) do used = used + amount_of(m) end
  redis.call('SET', sumkey, used)
  return used
end
local function window_retry(set, used, amount, limit, window)
  if amount > limit then return window end
  local left = used
  local events = redis.call('ZRANGE', set, 0, -1, 'WITHSCORES')
  for i = 1, #events, 2 do
    left = left - amount_of(events[i])
    if left + amount <= limit then return math.max(tonumber(events[i + 1]) + window - now, 0.001) end
  end
  return window
end
local function window_count(set, sumkey, window, amount, id)
  redis.call('ZADD', set, now, id .. ':' .. amount)
  local used = redis.call('INCRBY', sumkey, amount)
  local ms = math.ceil(window * 1000) + 1000
  redis.call('PEXPIRE', set, ms)
  redis.call('PEXPIRE', sumkey, ms)
  return used
end
"""

# KEYS: set, sum. ARGV: mode (hit|record|total), window, amount, limit, member id.
# Returns {allowed 0/1, total, retry_after as a string (Lua numbers become integers)}.
_WINDOW = _CLOCK + _WINDOW_FUNCTIONS + """
local set, sumkey = KEYS[1], KEYS[2]
local mode, window, amount = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local used = window_used(set, sumkey, window)
if mode == 'total' then return {1, used, '0'} end
if mode == 'hit' and used + amount > tonumber(ARGV[4]) then
  return {0, used, tostring(window_retry(set, used, amount, tonumber(ARGV[4]), window))}
end
return {1, window_count(set, sumkey, window, amount, ARGV[5]), '0'}
"""

# All of a request's checks at once, counting nothing unless every one passes.
# KEYS: rate set, rate sum, slot set, counters... ARGV: rate limit (0: none), rate window, member id,
# slot limit (0: none), slot ttl, holder, one limit per counter.
# Returns {allowed 0/1, refused by ('counter'|'rate'|'slot'|''), counter index, retry_after, counter values...}.
_ADMIT = _CLOCK + _WINDOW_FUNCTIONS + """
local values = {}
for i = 4, #KEYS do values[#values + 1] = tonumber(redis.call('GET', KEYS[i]) or '0') end
local function answer(allowed, reason, index, retry)
  local out = {allowed, reason, index, tostring(retry)}
  for _, v in ipairs(values) do out[#out + 1] = v end
  return out
end
for i, v in ipairs(values) do
  if v >= tonumber(ARGV[6 + i]) then return answer(0, 'counter', i - 1, 0) end
end
local rate_limit, rate_window = tonumber(ARGV[1]), tonumber(ARGV[2])
if rate_limit > 0 then
  local used = window_used(KEYS[1], KEYS[2], rate_window)
  if used + 1 > rate_limit then
    return answer(0, 'rate', 0, window_retry(KEYS[1], used, 1, rate_limit, rate_window))
  end
end
local slot_limit, slot_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
if slot_limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= slot_limit then return answer(0, 'slot', 0, 0) end
  redis.call('ZADD', KEYS[3], now + slot_ttl, ARGV[6])
  local ms = math.ceil(slot_ttl * 1000) + 1000
  if redis.call('PTTL', KEYS[3]) < ms then redis.call('PEXPIRE', KEYS[3], ms) end
end
if rate_limit > 0 then window_count(KEYS[1], KEYS[2], rate_window, 1, ARGV[3]) end
return answer(1, '', 0, 0)
"""

# KEYS: counter. ARGV: amount, ttl in ms (0: none). The TTL is set when the counter is created.
_ADD = """
if tonumber(ARGV[2]) > 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return tonumber(ARGV[1])
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""

# KEYS: slot set. ARGV: mode (acquire|renew|count), limit, ttl seconds, holder.
_SLOTS = _CLOCK + """
local set, mode = KEYS[1], ARGV[1]
local ttl, holder = tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
if mode == 'count' then return redis.call('ZCARD', set) end
if mode == 'renew' then
  if not redis.call('ZSCORE', set, holder) then return 0 end
elseif redis.call('ZCARD', set) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', set, now + ttl, holder)
local ms = math.ceil(ttl * 1000) + 1000
if redis.call('PTTL', set) < ms then redis.call('PEXPIRE', set, ms) end
return 1
"""


class RedisState(SharedState):
    """See gateway.shared.base.SharedState. One instance per event loop (redis.asyncio binds to one)."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "proxyhub:") -> None:
        self.url = url
        self.prefix = prefix
        # Fail fast when Redis is away: the callers fail open and the request goes on.
        self.client = aredis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
        self.breaker = Breaker()
        self._window = self.client.register_script(_WINDOW)
        self._add = self.client.register_script(_ADD)
        self._slots = self.client.register_script(_SLOTS)
        self._admit = self.client.register_script(_ADMIT)

    def _k(self, key: str) -> str:
        return f"{self.prefix}{{{key}}}"

    async def _call(self, op: Awaitable[T]) -> T:
        try:
            self.breaker.check()
        except SharedStateError:
            _discard(op)
            raise
        try:
            return await op
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)):
                self.breaker.trip()
            raise SharedStateError(f"shared state in Redis failed: {exc.__class__.__name__}") from exc

    async def _run_window(self, key: str, mode: str, window: float, amount: int, limit: int = 0) -> list[Any]:
        k = self._k(key)
        if amount < 0:
            raise ValueError("a window counts amounts of 0 or more")
        result: list[Any] = await self._call(self._window(
            keys=[k, k + ":sum"], args=[mode, repr(float(window)), int(amount), int(limit), uuid.uuid4().hex]))
        return result

    async def hit(self, key: str, limit: int, window: float, amount: int = 1) -> Verdict:
        allowed, used, retry = await self._run_window(key, "hit", window, amount, limit)
        return Verdict(bool(allowed), int(used), float(retry))

    async def admit(self, *, rate: Rate | None = None, slots: Slots | None = None,
                    counters: dict[str, int] | None = None) -> Admission:
        counters = counters or {}
        rate_key = self._k(rate.key if rate else "unused")
        holder = uuid.uuid4().hex
        keys = [rate_key, rate_key + ":sum", self._k(slots.key if slots else "unused"),
                *(self._k(k) for k in counters)]
        args: list[Any] = [rate.limit if rate else 0, repr(float(rate.window if rate else 0)), uuid.uuid4().hex,
                           slots.limit if slots else 0, repr(float(slots.ttl if slots else 0)), holder,
                           *counters.values()]
        result = await self._call(self._admit(keys=keys, args=args))
        allowed, reason, index, retry = int(result[0]), _text(result[1]), int(result[2]), float(result[3])
        values = dict(zip(counters, (int(v) for v in result[4:])))
        if not allowed:
            refused_by = list(counters)[index] if reason == "counter" else reason
            return Admission(False, refused_by, retry, None, values)
        return Admission(True, "", 0.0, holder if slots else None, values)

    async def record(self, key: str, amount: int, window: float) -> int:
        return int((await self._run_window(key, "record", window, amount))[1])

    async def window_total(self, key: str, window: float) -> int:
        return int((await self._run_window(key, "total", window, 0))[1])

    async def add(self, key: str, amount: int, ttl: float | None = None) -> int:
        ms = math.ceil(ttl * 1000) if ttl else 0
        return int(await self._call(self._add(keys=[self._k(key)], args=[int(amount), ms])))

    async def numbers(self, keys: list[str]) -> dict[str, int]:
        if not keys:
            return {}
        values = await self._call(self.client.mget([self._k(k) for k in keys]))
        return {k: int(v) if v is not None else 0 for k, v in zip(keys, values)}

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        holder = uuid.uuid4().hex
        taken = await self._call(self._slots(keys=[self._k(key)], args=["acquire", int(limit), repr(float(ttl)), holder]))
        return holder if taken else None

    async def renew_slot(self, key: str, holder: str, ttl: float) -> bool:
        return bool(await self._call(self._slots(keys=[self._k(key)], args=["renew", 0, repr(float(ttl)), holder])))

    async def release_slot(self, key: str, holder: str) -> None:
        await self._call(self.client.zrem(self._k(key), holder))

    async def slots_held(self, key: str) -> int:
        return int(await self._call(self._slots(keys=[self._k(key)], args=["count", 0, "0", ""])))

    async def get(self, key: str, touch: float | None = None) -> str | None:
        if touch is None:
            value = await self._call(self.client.get(self._k(key)))
        else:
            value = await self._call(self.client.getex(self._k(key), px=math.ceil(touch * 1000)))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        await self._call(self.client.set(self._k(key), value, px=math.ceil(ttl * 1000) if ttl else None))

    async def claim(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self._call(self.client.set(self._k(key), value, nx=True, px=math.ceil(ttl * 1000))))

    async def delete(self, key: str) -> None:
        await self._call(self.client.delete(self._k(key)))

    async def prune(self) -> None:
        return None  # Redis expires keys itself

    async def clear(self) -> None:
        keys = [k async for k in self.client.scan_iter(match=self.prefix + "*", count=500)]
        if keys:
            await self._call(self.client.delete(*keys))

    async def aclose(self) -> None:
        await self.client.aclose()


def _discard(op: Awaitable[Any]) -> None:
    """Close a coroutine that will not be awaited (else Python warns that it never was)."""
    close = getattr(op, "close", None)
    if close is not None:
        close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_sync_clients: dict[str, redis.Redis] = {}


def bump_generation(url: str, prefix: str, name: str) -> None:
    """Move a generation counter on; synchronous, for signal handlers (a blocking, thread-safe client)."""
    try:
        _sync_client(url).incr(f"{prefix}{{{generation_key(name)}}}")
    except (RedisError, OSError) as exc:
        raise SharedStateError(f"shared state in Redis failed: {exc.__class__.__name__}") from exc


def _sync_client(url: str) -> redis.Redis:
    """A thread-safe blocking client for the signal handlers, which run outside any event loop."""
    client = _sync_clients.get(url)
    if client is None:
        client = _sync_clients[url] = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
    return client
