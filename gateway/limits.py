"""Per-key limits and fair share, held across every process and host by the shared store (gateway.shared).

Each limit is optional: requests per minute, concurrent requests (refused at once
unless the key has a queue wait), tokens per day, tokens per month, estimated cost
per month (USD, catalog list prices, priced as gateway.usage.reports prices rows).
Tokens count input + cache write + output; cache reads are not counted (they are
cheap on a subscription).

Before the upstream call, admit() checks all of a key's limits in one atomic
step of the store (one round trip; nothing is counted unless every check passes).
After the request, finish() releases the concurrency slot and adds the request's
tokens and cost to the key's counters (a background task: off the response path).
A counter names its period (``tok:d:12:20261204``), so a new day or month starts at 0;
the first time a process sees a counter it is seeded once (across processes) from
the usage records, so limits set mid-month count what was used before.

Fair share: while any usable account of a provider is past
PROXYHUB_FAIR_SHARE_THRESHOLD percent of its 5-hour window, a key with a share
whose tokens over the trailing 5 hours exceed that share of the provider's pool
tokens over the same span is refused until the window resets. Each process adds up the tokens for
these 5-hour windows and writes them about once a second (SHARE_FLUSH_SECONDS), so a request without
limits costs no round trip here at all.

Should the store or the database fail, requests pass (logged): a limit must not
take the gateway down with it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import F, Sum

from accounts.models import ApiKey
from credentials import alerts, window_state
from gateway import pool, shared
from gateway.refusals import RefusalError
from gateway.usage.models import UsageRecord
from gateway.usage.reports import Prices, model_prices
from gateway.usage.rows import UsageRow

logger = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60.0
SLOT_TTL_SECONDS = 60.0  # a crashed process's slot frees itself after this; live requests renew it
FAIR_SHARE_WINDOW_SECONDS = 5 * 3600.0
PRICES_CACHE_SECONDS = 60.0
PROVIDER_NAMES = {"claude": "Claude", "codex": "ChatGPT (Codex)"}
MICRO = 1_000_000  # cost counters hold micro-dollars: the store counts integers
_FAIL_OPEN_LOG_SECONDS = 60.0

_fail_open_logged_at = -1e9
_seeded: set[str] = set()
_prices: tuple[dict[str, Prices], float] | None = None
_background: set[asyncio.Task[None]] = set()
_share_pending: dict[str, int] = {}
_share_flush: asyncio.Task[None] | None = None
SHARE_FLUSH_SECONDS = 1.0


class LimitExceededError(RefusalError):
    """A key's limit refuses the request: 429, the message naming the limit, ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        seconds = str(max(int(retry_after + 0.999), 1))
        super().__init__(429, f"{message} Try again in {seconds} s.", error_type="rate_limit_exceeded",
                         headers={"retry-after": seconds})
        self.retry_after = retry_after


def counted_tokens(input_tokens: int, cache_write_tokens: int, output_tokens: int) -> int:
    """The tokens a limit counts: input + cache write + output (cache reads are not counted)."""
    return input_tokens + cache_write_tokens + output_tokens


# --- periods and counter names ----------------------------------------------------------------


def _day_end(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(now: datetime) -> datetime:
    start = _month_start(now)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


@dataclass(frozen=True)
class Counter:
    """One of a key's period counters: its store key, limit (in store units), period and when it ends."""

    name: str  # daily_tokens | monthly_tokens | monthly_cost
    key: str
    limit: int
    period: str
    since: datetime
    ends: datetime


def counters_for(api_key: ApiKey, now: datetime) -> list[Counter]:
    """The counters of the limits ``api_key`` has."""
    out: list[Counter] = []
    day, month = now.strftime("%Y%m%d"), now.strftime("%Y%m")
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if api_key.daily_token_limit:
        out.append(Counter("daily_tokens", f"tok:d:{api_key.pk}:{day}", int(api_key.daily_token_limit),
                           now.strftime("%Y-%m-%d"), day_start, _day_end(now)))
    if api_key.monthly_token_budget:
        out.append(Counter("monthly_tokens", f"tok:m:{api_key.pk}:{month}", int(api_key.monthly_token_budget),
                           now.strftime("%Y-%m"), _month_start(now), _next_month(now)))
    if api_key.monthly_cost_limit:
        out.append(Counter("monthly_cost", f"usd:m:{api_key.pk}:{month}", int(Decimal(api_key.monthly_cost_limit) * MICRO),
                           now.strftime("%Y-%m"), _month_start(now), _next_month(now)))
    return out


def rate_key(api_key_id: int) -> str:
    return f"rpm:{api_key_id}"


def slot_key(api_key_id: int) -> str:
    return f"conc:{api_key_id}"


def share_key(api_key_id: int, provider: str) -> str:
    return f"fs:key:{provider}:{api_key_id}"


def pool_key(provider: str) -> str:
    return f"fs:pool:{provider}"


def _describe(counter: Counter) -> str:
    if counter.name == "daily_tokens":
        return f"This key used its limit of {counter.limit} tokens per day (input + cache write + output)."
    if counter.name == "monthly_tokens":
        return f"This key used its monthly budget of {counter.limit} tokens (input + cache write + output)."
    return f"This key used its monthly cost limit of ${Decimal(counter.limit) / MICRO:.2f} (estimated from list prices)."


# --- admission --------------------------------------------------------------------------------


@dataclass
class Ticket:
    """What admit() let through: the slot to give back and what to count when the request ends."""

    api_key: ApiKey
    provider: str
    holder: str | None = None
    renewer: asyncio.Task[None] | None = field(default=None, repr=False)


def _has_limits(api_key: ApiKey) -> bool:
    return bool(api_key.requests_per_minute or api_key.concurrency_limit or api_key.daily_token_limit
                or api_key.monthly_token_budget or api_key.monthly_cost_limit)


async def admit(api_key: ApiKey, provider: str) -> Ticket:
    """Check every limit of ``api_key`` before the upstream call; raises LimitExceededError naming the limit.

    Call finish() with the ticket when the request ends (in a finally).
    """
    ticket = Ticket(api_key, provider)
    if api_key.pool_share_percent:
        await _check_fair_share(api_key, provider)
    if not _has_limits(api_key):
        return ticket
    now = datetime.now(dt_timezone.utc)
    counters = counters_for(api_key, now)
    store = shared.backend()
    try:
        await _seed(store, api_key, counters)
        rate = shared.Rate(rate_key(api_key.pk), api_key.requests_per_minute, RATE_WINDOW_SECONDS) \
            if api_key.requests_per_minute else None
        slots = shared.Slots(slot_key(api_key.pk), api_key.concurrency_limit, SLOT_TTL_SECONDS) \
            if api_key.concurrency_limit else None
        limits = {c.key: c.limit for c in counters}
        deadline = time.monotonic() + max(api_key.queue_wait_seconds or 0.0, 0.0)
        while True:
            verdict = await store.admit(rate=rate, slots=slots, counters=limits)
            if verdict.allowed or verdict.refused_by != "slot" or time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))  # queued: poll for a free slot
    except shared.SharedStateError as exc:
        _log_fail_open(exc)
        return ticket
    if not verdict.allowed:
        raise _refusal(api_key, verdict, counters, now)
    if verdict.holder is not None:
        ticket.holder = verdict.holder
        ticket.renewer = asyncio.get_running_loop().create_task(_renew(api_key.pk, verdict.holder))
    return ticket


def _refusal(api_key: ApiKey, verdict: shared.Admission, counters: list[Counter], now: datetime) -> LimitExceededError:
    if verdict.refused_by == "rate":
        return LimitExceededError(f"This key is limited to {api_key.requests_per_minute} requests per minute.",
                             verdict.retry_after)
    if verdict.refused_by == "slot":
        waited = f" (waited {api_key.queue_wait_seconds:g} s for a slot)" if api_key.queue_wait_seconds else ""
        return LimitExceededError(f"This key is limited to {api_key.concurrency_limit} concurrent requests{waited}.", 1.0)
    for counter in counters:
        if counter.key == verdict.refused_by:
            alerts.key_budget(api_key.prefix, counter.name, verdict.counters.get(counter.key, counter.limit),
                              counter.limit, counter.period)
            return LimitExceededError(_describe(counter), (counter.ends - now).total_seconds())
    return LimitExceededError("This key reached one of its limits.", 60.0)


async def _renew(api_key_id: int, holder: str) -> None:
    """Keep a long stream's concurrency slot: renew its lease well before it lapses."""
    while True:
        await asyncio.sleep(SLOT_TTL_SECONDS / 3)
        try:
            await shared.backend().renew_slot(slot_key(api_key_id), holder, SLOT_TTL_SECONDS)
        except shared.SharedStateError as exc:
            _log_fail_open(exc)


async def finish(ticket: Ticket, record: UsageRow) -> None:
    """The request ended: give its slot back now; count its tokens and cost in the background."""
    if ticket.renewer is not None:
        ticket.renewer.cancel()
    if ticket.holder is not None:
        try:
            await shared.backend().release_slot(slot_key(ticket.api_key.pk), ticket.holder)
        except shared.SharedStateError as exc:
            _log_fail_open(exc)
    if record.endpoint == "count_tokens":
        return  # its input_tokens are a count of the prompt, not tokens used
    tokens = counted_tokens(record.input_tokens, record.cache_write_tokens, record.output_tokens)
    if tokens <= 0:
        return
    _note_share(pool_key(ticket.provider), tokens)
    if ticket.api_key.pool_share_percent:
        _note_share(share_key(ticket.api_key.pk, ticket.provider), tokens)
    if not _has_limits(ticket.api_key):
        return
    task = asyncio.get_running_loop().create_task(_count(ticket, record, tokens))
    _background.add(task)  # held, or the loop may drop it before it ran
    task.add_done_callback(_background.discard)


async def _count(ticket: Ticket, record: UsageRow, tokens: int) -> None:
    api_key, store = ticket.api_key, shared.backend()
    now = datetime.now(dt_timezone.utc)
    try:
        for counter in counters_for(api_key, now):
            if counter.name == "monthly_cost":
                amount = await _micro_cost(record)
            else:
                amount = tokens
            if amount <= 0:
                continue
            ttl = (counter.ends - now).total_seconds() + 3600
            used = await store.add(counter.key, amount, ttl)
            alerts.key_budget(api_key.prefix, counter.name, used, counter.limit, counter.period)
    except shared.SharedStateError as exc:
        _log_fail_open(exc)
    except Exception:
        logger.exception("counting a request against its key's limits failed")


def _note_share(key: str, tokens: int) -> None:
    """Add tokens to a trailing 5-hour window, batched: every request adds to the pool's window, so each
    process writes its sums about once a second (one round trip per window) instead of once per request."""
    global _share_flush
    _share_pending[key] = _share_pending.get(key, 0) + tokens
    loop = asyncio.get_running_loop()
    if _share_flush is None or _share_flush.done() or _share_flush.get_loop() is not loop:
        _share_flush = loop.create_task(_flush_shares())


async def _flush_shares() -> None:
    # Tokens noted while a write is under way see this task running and start none of their own:
    # loop until nothing is pending, or they would wait for the next request.
    while True:
        await asyncio.sleep(SHARE_FLUSH_SECONDS)
        pending = dict(_share_pending)
        _share_pending.clear()
        store = shared.backend()
        try:
            # The pool last: a key's tokens never show up before the pool's that include them.
            for key in sorted(pending, key=lambda k: k.startswith("fs:pool:")):
                await store.record(key, pending[key], FAIR_SHARE_WINDOW_SECONDS)
        except shared.SharedStateError as exc:
            _log_fail_open(exc)
        if not _share_pending:
            return


# --- cost -------------------------------------------------------------------------------------


async def _price_table() -> dict[str, Prices]:
    global _prices
    if _prices is None or _prices[1] < time.monotonic():
        try:
            _prices = (await sync_to_async(model_prices)(), time.monotonic() + PRICES_CACHE_SECONDS)
        except DatabaseError:
            await sync_to_async(close_old_connections)()
            return _prices[0] if _prices else {}
    return _prices[0]


def _priced(prices: dict[str, Prices], models: tuple[str, ...], tokens: dict[str, int]) -> Decimal:
    for name in models:
        found = prices.get(name)
        if found is not None:
            return found.cost(tokens)
    return Decimal(0)  # a model without list prices costs nothing here (as in the reports)


async def _micro_cost(record: UsageRow) -> int:
    prices = await _price_table()
    tokens = {"input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
              "cache_read_tokens": record.cache_read_tokens, "cache_write_tokens": record.cache_write_tokens}
    cost = _priced(prices, (record.upstream_model, record.requested_model.split("(")[0]), tokens)
    return int(cost * MICRO + Decimal("0.5"))


# --- seeding counters from the usage records ---------------------------------------------------


def used_since(api_key_id: int, since: datetime, cost: bool) -> int:
    """Tokens (input + cache write + output) or micro-dollars the key used since ``since``, from the records."""
    rows = UsageRecord.objects.filter(api_key_id=api_key_id, created_at__gte=since)
    if not cost:
        total = rows.aggregate(t=Sum(F("input_tokens") + F("cache_write_tokens") + F("output_tokens")))["t"]
        return int(total or 0)
    prices = model_prices()
    micro = Decimal(0)
    for row in rows.values("upstream_model", "requested_model").annotate(
            input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"),
            cache_read_tokens=Sum("cache_read_tokens"), cache_write_tokens=Sum("cache_write_tokens")):
        tokens = {k: int(row[k] or 0) for k in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                 "cache_write_tokens")}
        micro += _priced(prices, (row["upstream_model"], str(row["requested_model"]).split("(")[0]), tokens) * MICRO
    return int(micro + Decimal("0.5"))


async def _seed(store: shared.SharedState, api_key: ApiKey, counters: list[Counter]) -> None:
    """Start each counter once (across processes) from what the records say was used in its period."""
    for counter in counters:
        if counter.key in _seeded:
            continue
        ttl = (counter.ends - datetime.now(dt_timezone.utc)).total_seconds() + 3600
        if await store.claim(f"seeded:{counter.key}", "1", ttl):
            try:
                used = await sync_to_async(used_since)(api_key.pk, counter.since, counter.name == "monthly_cost")
            except DatabaseError as exc:
                await sync_to_async(close_old_connections)()
                await store.delete(f"seeded:{counter.key}")  # the next request tries again
                _log_fail_open(exc)
                continue
            if used:
                await store.add(counter.key, used, ttl)
        _seeded.add(counter.key)


# --- fair share -------------------------------------------------------------------------------


async def pressure(provider: str) -> float | None:
    """Seconds until the 5-hour window of the first usable account past the threshold resets, or None
    when no usable account of ``provider`` is past PROXYHUB_FAIR_SHARE_THRESHOLD percent of it."""
    threshold = float(settings.PROXYHUB_FAIR_SHARE_THRESHOLD)
    now = time.time()
    try:
        credentials = await pool.snapshot(provider)
    except DatabaseError:
        return None
    moment = datetime.now(dt_timezone.utc)
    resets: list[float] = []
    for credential in credentials:
        window = (credential.windows or {}).get("5h")
        if not credential.is_usable(moment) or not isinstance(window, dict):
            continue
        used = window_state.binding_percent({"5h": window}, now)
        if used is not None and used > threshold:
            reset = window.get("reset")
            resets.append(float(reset) - now if isinstance(reset, (int, float)) else FAIR_SHARE_WINDOW_SECONDS)
    return max(min(resets), 1.0) if resets else None


async def _check_fair_share(api_key: ApiKey, provider: str) -> None:
    wait = await pressure(provider)
    if wait is None:
        return  # below the threshold nobody is held back
    store = shared.backend()
    try:
        mine = await store.window_total(share_key(api_key.pk, provider), FAIR_SHARE_WINDOW_SECONDS)
        everyone = await store.window_total(pool_key(provider), FAIR_SHARE_WINDOW_SECONDS)
    except shared.SharedStateError as exc:
        _log_fail_open(exc)
        return
    share = Decimal(api_key.pool_share_percent or 0)
    if mine > everyone * share / 100:
        raise LimitExceededError(
            f"The {PROVIDER_NAMES.get(provider, provider)} pool is under pressure (an account is past "
            f"{float(settings.PROXYHUB_FAIR_SHARE_THRESHOLD):g}% of its 5-hour window) and this key used more than its "
            f"fair share of {float(share):g}% of the pool's tokens over the last 5 hours ({mine} of {everyone}).", wait)


# --- what /me/ shows --------------------------------------------------------------------------


async def ausage(api_key: ApiKey) -> dict[str, Any]:
    """Each limit of the key with how much of it is used now (from the shared store)."""
    now = datetime.now(dt_timezone.utc)
    counters = counters_for(api_key, now)
    store = shared.backend()
    out: dict[str, Any] = {}
    try:
        await _seed(store, api_key, counters)
        values = await store.numbers([c.key for c in counters]) if counters else {}
        if api_key.requests_per_minute:
            out["requests_per_minute"] = await store.window_total(rate_key(api_key.pk), RATE_WINDOW_SECONDS)
        if api_key.concurrency_limit:
            out["concurrent"] = await store.slots_held(slot_key(api_key.pk))
        shares: dict[str, int] = {}
        if api_key.pool_share_percent:
            for provider in ("claude", "codex"):
                mine = await store.window_total(share_key(api_key.pk, provider), FAIR_SHARE_WINDOW_SECONDS)
                everyone = await store.window_total(pool_key(provider), FAIR_SHARE_WINDOW_SECONDS)
                shares[provider] = round(100 * mine / everyone) if everyone else 0
            out["share"] = shares
    except shared.SharedStateError:
        return {}
    for counter in counters:
        value = values.get(counter.key, 0)
        out[counter.name] = Decimal(value) / MICRO if counter.name == "monthly_cost" else value
    return out


def usage(api_key: ApiKey) -> dict[str, Any]:
    """ausage() from synchronous code (a Django view)."""
    from asgiref.sync import async_to_sync

    return async_to_sync(ausage)(api_key)


def _log_fail_open(exc: Exception) -> None:
    global _fail_open_logged_at
    if time.monotonic() - _fail_open_logged_at > _FAIL_OPEN_LOG_SECONDS:
        _fail_open_logged_at = time.monotonic()
        logger.warning("rate limits not enforced (every key limit and fair share): the shared store or database "
                       "is unreachable (%s)", exc)


def idle() -> bool:
    """Nothing of finished requests is left to count (tests wait for it before the next test)."""
    return not _share_pending and not _background and (_share_flush is None or _share_flush.done())


def reset() -> None:
    """Forget this process's cached figures (tests); shared counters are cleared by the store."""
    global _prices
    _seeded.clear()
    _share_pending.clear()
    _prices = None
