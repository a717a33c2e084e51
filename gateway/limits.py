"""Per-key limits an admin can set: requests per minute and a monthly token budget.

The request rate is counted in this process (a sliding minute); with several
processes each allows the full rate, so set it per process. The budget is the
key's tokens this calendar month (UTC) from the usage records, re-read at most
every BUDGET_CACHE_SECONDS, so a burst can overshoot it by that much.
"""
from __future__ import annotations

import time
from collections import deque
from datetime import datetime, timezone as dt_timezone

from asgiref.sync import sync_to_async
from django.db.models import F, Sum

from accounts.models import ApiKey
from gateway.models import UsageRecord

BUDGET_CACHE_SECONDS = 30.0

_recent: dict[int, deque[float]] = {}
_budget_used: dict[int, tuple[int, float]] = {}


class LimitExceeded(Exception):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def check_rate(api_key: ApiKey, now: float | None = None) -> None:
    """Count this request; raises LimitExceeded past the key's requests per minute."""
    limit = api_key.requests_per_minute
    if not limit:
        return
    now = time.monotonic() if now is None else now
    window = _recent.setdefault(api_key.pk, deque())
    while window and now - window[0] >= 60:
        window.popleft()
    if len(window) >= limit:
        raise LimitExceeded(f"This key is limited to {limit} requests per minute.", 60 - (now - window[0]))
    window.append(now)


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
    _recent.clear()
    _budget_used.clear()
