"""Time the per-conversation report (gateway/usage/conversations.py) on a database of fixture rows.

    DATABASE_URL=sqlite:////tmp/proxyhub-usage-bench.sqlite3 .venv/bin/python bench/usage_conversations.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ph_r .venv/bin/python bench/usage_conversations.py

The database must already hold rows from ``manage.py usage_fixture`` (bench/usage_pages.py builds one;
``--rows 1000000 --days 90 --keys 100`` is the size of issue 7). Each line is the median of three calls
after one warm-up, for both orders over 24 h to 90 days, for all keys, the busiest key and its user;
each result is checked against a plain sum over the same records (over the period widened to whole UTC
days, as the report's rollup is per day). Prints a Markdown table.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proxyhub.settings")
    os.environ.setdefault("PROXYHUB_BACKGROUND_REFRESH", "false")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count

    from accounts.models import ApiKey
    from gateway.usage import conversations, reports
    from gateway.usage.models import UsageRecord

    total = UsageRecord.objects.count()
    busiest = (UsageRecord.objects.values("api_key_id").annotate(n=Count("id")).order_by("-n").first() or {})
    key = ApiKey.objects.select_related("user").get(pk=busiest["api_key_id"])
    print(f"{connection.vendor}, {total:,} records; busiest key {key.prefix} ({busiest['n']:,} records)\n")
    print("| period | scope | order | rows | seconds |")
    print("|---|---|---|---|---|")
    for period in reports.PERIODS:
        span = reports.period_range(period)
        for scope, kwargs in (("all keys", {}), ("one key", {"api_key": key}), ("one user", {"user": key.user})):
            for order in conversations.ORDERS:
                seconds, rows = _timed(lambda: conversations.conversations(span, order=order, **kwargs))
                _check(rows, span, kwargs)
                print(f"| {period} | {scope} | {order} | {len(rows)} | {seconds:.3f} |", flush=True)


def _timed(call: Any) -> tuple[float, Any]:
    call()
    times, result = [], None
    for _ in range(3):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _check(rows: list[dict[str, Any]], span: Any, kwargs: dict[str, Any]) -> None:
    """Each row's requests and cache reads equal a direct sum over its records."""
    from django.db.models import Count, Sum

    from gateway.usage.conversations import _days
    from gateway.usage.models import UsageRecord

    for row in rows[:5]:
        qs = UsageRecord.objects.filter(_days(span).record_filter(), is_check=False, api_key_id=row["api_key_id"],
                                        conversation=row["conversation"])
        expected = qs.aggregate(n=Count("id"), read=Sum("cache_read_tokens"))
        assert (row["requests"], row["cache_read_tokens"]) == (expected["n"], expected["read"] or 0), row


if __name__ == "__main__":
    main()
