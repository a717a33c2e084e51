"""Per-key limits an admin can set: requests per minute and a monthly token budget.

The request rate is a sliding minute in the shared store (gateway.shared: Redis
or the database), counted across every process and host: a key limited to 20
requests per minute gets exactly 20 in any 60 seconds, whichever worker serves
them. A key without limits costs nothing here; one with a rate limit, one
round trip. Should the store fail, requests pass (logged): a limit must not
take the gateway down with it.

The budget is the key's tokens this calendar month (UTC) from the usage records,
re-read at most every BUDGET_CACHE_SECONDS, so a burst can overshoot it by that much.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone as dt_timezone

from asgiref.sync import sync_to_async
from django.db.models import F, Sum

from accounts.models import ApiKey
from gateway import shared
from gateway.models import UsageRecord

logger = logging.getLogger(__name__)

BUDGET_CACHE_SECONDS = 30.0
RATE_WINDOW_SECONDS = 60.0
_FAIL_OPEN_LOG_SECONDS = 60.0

_budget_used: dict[int, tuple[int, float]] = {}
_fail_open_logged_at = -1e9


class LimitExceeded(Exception):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def rate_key(api_key_id: int) -> str:
    return f"rpm:{api_key_id}"


async def acheck_rate(api_key: ApiKey) -> None:
    """Count this request in the key's shared minute; raises LimitExceeded past its requests per minute."""
    limit = api_key.requests_per_minute
    if not limit:
        return
    try:
        verdict = await shared.backend().hit(rate_key(api_key.pk), limit, RATE_WINDOW_SECONDS)
    except shared.SharedStateError as exc:
        _log_fail_open(exc)
        return
    if not verdict.allowed:
        raise LimitExceeded(f"This key is limited to {limit} requests per minute.", verdict.retry_after)


def _log_fail_open(exc: Exception) -> None:
    global _fail_open_logged_at
    if time.monotonic() - _fail_open_logged_at > _FAIL_OPEN_LOG_SECONDS:
        _fail_open_logged_at = time.monotonic()
        logger.warning("rate limits not enforced: the shared store is unreachable (%s)", exc)


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(now: datetime) -> datetime:
    start = _month_start(now)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def tokens_this_month(api_key_id: int, now: datetime) -> int:
    total = (UsageRecord.objects.filter(api_key_id=api_key_id, created_at__gte=_month_start(now))
             .aggregate(t=Sum(F("input_tokens") + F("output_tokens") + F("cache_read_tokens") + F("cache_write_tokens"))))
    return int(total["t"] or 0)


async def acheck_budget(api_key: ApiKey) -> None:
    """Raises LimitExceeded when the key used up its monthly token budget."""
    budget = api_key.monthly_token_budget
    if not budget:
        return
    now = datetime.now(dt_timezone.utc)
    cached = _budget_used.get(api_key.pk)
    if cached is None or cached[1] < time.monotonic():
        used = await sync_to_async(tokens_this_month)(api_key.pk, now)
        cached = (used, time.monotonic() + BUDGET_CACHE_SECONDS)
        _budget_used[api_key.pk] = cached
    if cached[0] >= budget:
        raise LimitExceeded(f"This key used its monthly budget of {budget} tokens.",
                            (_next_month(now) - now).total_seconds())


def reset() -> None:
    """Forget this process's cached budget figures (tests); shared counters are cleared by the store."""
    _budget_used.clear()
