"""Each shared-state primitive on both backends (the database, and Redis), races included.

Races on the database backend run the backend's synchronous steps in several
threads, each with its own database connection: that is what several processes
do (a single event loop funnels its database calls through one thread, which
would hide a race). On Redis, many coroutines at once share a connection pool.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from gateway import shared
from gateway.shared import database, generations
from gateway.shared.base import Rate, SharedState, SharedStateError, Slots

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def store(shared_backend: str) -> AsyncIterator[SharedState]:
    state = shared.backend()
    assert state.name == shared_backend
    yield state
    await shared.aclose()
    # The database backend's connection lives in asgiref's thread: close it there, or Postgres
    # cannot drop the test database.
    await sync_to_async(connections.close_all)()


async def race(store: SharedState, count: int, op: str, *args: Any) -> list[Any]:
    """``count`` calls of ``op`` at once: threads with their own connections, or concurrent coroutines."""
    if store.name == "redis":
        call = (lambda: store.admit(rate=args[0], slots=args[1], counters=args[2])) if op == "admit" else (
            lambda: getattr(store, op)(*args))
        return list(await asyncio.gather(*(call() for _ in range(count))))
    step: Callable[..., Any] = getattr(database, "_" + op)

    def run() -> Any:
        try:
            return step(*args)
        finally:
            connections.close_all()

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(8) as executor:
        return list(await asyncio.gather(*(loop.run_in_executor(executor, run) for _ in range(count))))


async def test_a_window_lets_exactly_the_limit_through_then_says_when_to_retry(store):
    verdicts = [await store.hit("rpm:1", 5, 60) for _ in range(7)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 2
    assert [v.used for v in verdicts] == [1, 2, 3, 4, 5, 5, 5]
    assert 55 < verdicts[-1].retry_after <= 60
    assert (await store.hit("rpm:2", 5, 60)).allowed  # another key has its own window


async def test_a_refused_hit_counts_nothing_and_the_window_slides(store):
    assert (await store.hit("slide", 2, 2.0)).allowed
    await asyncio.sleep(0.8)
    assert (await store.hit("slide", 2, 2.0)).allowed
    refused = await store.hit("slide", 2, 2.0)
    assert not refused.allowed and 0.5 < refused.retry_after <= 1.2  # when the first hit leaves
    await asyncio.sleep(refused.retry_after + 0.1)
    again = await store.hit("slide", 2, 2.0)
    assert again.allowed and again.used == 2  # the first hit left, the second stays; the refused one never counted


async def test_weighted_hits_fit_within_the_limit(store):
    assert (await store.hit("tokens", 10, 60, amount=4)).used == 4
    assert (await store.hit("tokens", 10, 60, amount=4)).used == 8
    refused = await store.hit("tokens", 10, 60, amount=4)
    assert not refused.allowed and refused.used == 8 and 0 < refused.retry_after <= 60
    assert (await store.hit("tokens", 10, 60, amount=2)).used == 10
    too_big = await store.hit("other", 10, 60, amount=11)
    assert not too_big.allowed and too_big.retry_after == 60


async def test_many_concurrent_hits_never_pass_the_limit(store):
    verdicts = await race(store, 60, "hit", "burst", 20, 60.0, 1)
    assert sum(v.allowed for v in verdicts) == 20
    assert (await store.window_total("burst", 60)) == 20


async def test_admit_checks_counters_rate_and_slots_and_counts_only_when_all_pass(store):
    await store.add("tokens:day", 100)
    refused = await store.admit(rate=Rate("a:rpm", 3, 60), slots=Slots("a:conc", 2, 60),
                                counters={"tokens:month": 500, "tokens:day": 100})
    assert not refused.allowed and refused.refused_by == "tokens:day"
    assert refused.counters == {"tokens:month": 0, "tokens:day": 100}
    assert await store.window_total("a:rpm", 60) == 0 and await store.slots_held("a:conc") == 0
    admitted = [await store.admit(rate=Rate("a:rpm", 3, 60), slots=Slots("a:conc", 2, 60),
                                  counters={"tokens:month": 500}) for _ in range(3)]
    assert [a.allowed for a in admitted] == [True, True, False]
    assert admitted[2].refused_by == "slot" and all(a.holder for a in admitted[:2])
    assert await store.window_total("a:rpm", 60) == 2  # the refused request took no place in the rate
    await store.release_slot("a:conc", admitted[0].holder)
    assert (await store.admit(rate=Rate("a:rpm", 3, 60), slots=Slots("a:conc", 2, 60))).allowed
    by_rate = await store.admit(rate=Rate("a:rpm", 3, 60), slots=Slots("a:conc", 5, 60))
    assert not by_rate.allowed and by_rate.refused_by == "rate" and 0 < by_rate.retry_after <= 60
    assert await store.slots_held("a:conc") == 2  # the rate refused before a slot was taken
    free = await store.admit()
    assert free.allowed and free.holder is None


async def test_many_concurrent_admits_take_exactly_the_free_slots(store):
    admissions = await race(store, 40, "admit", Rate("crowd:rpm", 10, 60.0), Slots("crowd:conc", 5, 60.0), {})
    assert sum(a.allowed for a in admissions) == 5
    assert await store.window_total("crowd:rpm", 60) == 5 and await store.slots_held("crowd:conc") == 5


async def test_recorded_amounts_leave_the_window_after_it(store):
    assert await store.record("spent", 3, 1.5) == 3
    assert await store.record("spent", 4, 1.5) == 7
    assert await store.window_total("spent", 1.5) == 7
    await asyncio.sleep(1.6)
    assert await store.window_total("spent", 1.5) == 0
    assert await store.record("spent", 5, 1.5) == 5


async def test_counters_add_up_and_start_again_when_their_ttl_lapses(store):
    assert await store.add("day:1", 5, ttl=1.0) == 5
    assert await store.add("day:1", 3, ttl=1.0) == 8
    assert await store.numbers(["day:1", "missing"]) == {"day:1": 8, "missing": 0}
    await asyncio.sleep(1.2)
    assert await store.numbers(["day:1"]) == {"day:1": 0}
    assert await store.add("day:1", 2, ttl=1.0) == 2
    assert await store.add("forever", 1) == 1 and await store.add("forever", 1) == 2


async def test_concurrency_slots_are_limited_released_and_lapse(store):
    first = await store.acquire_slot("conc", 2, 60)
    second = await store.acquire_slot("conc", 2, 60)
    assert first and second and first != second
    assert await store.acquire_slot("conc", 2, 60) is None
    assert await store.slots_held("conc") == 2
    await store.release_slot("conc", first)
    third = await store.acquire_slot("conc", 2, 60)
    assert third is not None and await store.slots_held("conc") == 2
    # A holder that never releases (its process died) frees its slot when the lease lapses.
    assert await store.acquire_slot("crash", 1, 0.5) is not None
    assert await store.acquire_slot("crash", 1, 0.5) is None
    await asyncio.sleep(0.7)
    assert await store.slots_held("crash") == 0
    assert await store.acquire_slot("crash", 1, 0.5) is not None


async def test_a_renewed_slot_outlives_its_first_lease(store):
    holder = await store.acquire_slot("long", 1, 0.8)
    assert holder is not None
    await asyncio.sleep(0.4)
    assert await store.renew_slot("long", holder, 5)
    await asyncio.sleep(0.6)  # past the first lease
    assert await store.acquire_slot("long", 1, 5) is None
    await store.release_slot("long", holder)
    assert not await store.renew_slot("long", holder, 5)  # a released slot cannot be renewed


async def test_many_concurrent_acquires_take_exactly_the_limit(store):
    holders = await race(store, 40, "acquire_slot", "crowd", 5, 60.0)
    taken = [h for h in holders if h is not None]
    assert len(taken) == 5 and len(set(taken)) == 5
    assert await store.slots_held("crowd") == 5


async def test_map_entries_expire_and_touch_renews_them(store):
    assert await store.get("sticky:x") is None
    # Margins of a second or more: a busy CI machine stalled a database call past 0.3 s.
    await store.put("sticky:x", "7", ttl=2.0)
    assert await store.get("sticky:x") == "7"
    await asyncio.sleep(1.0)
    assert await store.get("sticky:x", touch=4.0) == "7"  # renewed: lives past its first TTL
    await asyncio.sleep(1.5)
    assert await store.get("sticky:x") == "7"
    await store.put("sticky:x", "9", ttl=0.3)
    await asyncio.sleep(0.5)
    assert await store.get("sticky:x", touch=10) is None  # a lapsed entry is not revived by a touch
    await store.put("kept", "1")
    await store.delete("kept")
    assert await store.get("kept") is None


async def test_only_one_of_many_concurrent_claims_wins(store):
    wins = await race(store, 30, "claim", "alert:episode", "p", 60.0)
    assert wins.count(True) == 1
    assert await store.claim("short", "a", 0.3) is True  # the first claim of a fresh key wins
    assert await store.claim("short", "b", 0.3) is False
    await asyncio.sleep(0.5)
    assert await store.claim("short", "c", 0.3) is True  # a lapsed claim can be taken again
    assert await store.get("short") == "c"


async def test_generations_move_on_bump_and_a_poll_notifies_who_subscribed(store):
    heard: list[str] = []
    generations.subscribe("test-a", lambda: heard.append("a"))
    generations.subscribe("test-b", lambda: heard.append("b"))
    names = ["test-a", "test-b"]
    before = await store.generations(names)
    loop = asyncio.get_running_loop()

    def bump_in_a_thread(name: str) -> None:  # as a signal handler does, off the event loop
        try:
            generations.bump(name)
        finally:
            connections.close_all()

    await loop.run_in_executor(None, bump_in_a_thread, "test-a")
    after = await store.generations(names)
    assert after == {"test-a": before["test-a"] + 1, "test-b": before["test-b"]}
    original = generations.NAMES
    generations.NAMES = names
    try:
        seen = await generations.poll(None, store)  # the first poll clears everything
        assert sorted(heard) == ["a", "b"]
        heard.clear()
        await loop.run_in_executor(None, bump_in_a_thread, "test-b")
        await generations.poll(seen, store)
        assert heard == ["b"]
    finally:
        generations.NAMES = original
        generations._subscribers.pop("test-a")
        generations._subscribers.pop("test-b")


async def test_an_unreachable_redis_raises_shared_state_error_and_rate_limits_fail_open(settings):
    from gateway import limits
    from gateway.shared.redis_store import RedisState

    state = RedisState("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(SharedStateError):
            await state.hit("rpm:1", 1, 60)
        assert state.breaker.open_until > time.monotonic()  # the next calls fail at once for a moment
        with pytest.raises(SharedStateError, match="a moment ago"):
            await state.get("sticky:x")
    finally:
        await state.aclose()

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        for _ in range(3):
            await limits.admit(_Key(requests_per_minute=1), "claude")  # type: ignore[arg-type]  # a limit never takes the gateway down
    finally:
        await shared.aclose()


class _Key:
    """The limit fields limits.admit() reads, all unset unless given."""

    def __init__(self, **limits: int) -> None:
        self.pk = 1
        self.pool_share_percent = self.concurrency_limit = self.daily_token_limit = None
        self.monthly_token_budget = self.monthly_cost_limit = self.queue_wait_seconds = None
        self.requests_per_minute = None
        for name, value in limits.items():
            setattr(self, name, value)


def test_a_key_without_limits_never_touches_the_store(settings):
    from gateway import limits

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # would raise if called
    started = time.perf_counter()
    asyncio.run(limits.admit(_Key(), "claude"))  # type: ignore[arg-type]
    assert time.perf_counter() - started < 0.05
