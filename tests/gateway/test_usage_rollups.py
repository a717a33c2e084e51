"""Reports read rollups only, and every total equals a plain SQL sum over the raw rows, for any range and grouping."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateway.models import UsageRecord, UsageRollup
from gateway.usage import reports
from gateway.usage.reports import Range
from gateway.usage.rows import UsageRow
from gateway.usage.store import write_rows

pytestmark = pytest.mark.django_db
UTC = dt_timezone.utc
NUMBERS = ("requests", *reports.TOTALS)


def raw_sums(span: Range, **where: Any) -> tuple[int, ...]:
    """COUNT(*) and the token sums over the raw records in ``span``: plain SQL, no ORM, no rollups."""
    clauses, params = ["1=1"], []
    for column, bound in (("created_at >= %s", span.since), ("created_at < %s", span.until)):
        if bound is not None:
            clauses.append(column)
            params.append(connection.ops.adapt_datetimefield_value(bound))
    for column, value in where.items():
        clauses.append(f"{column} = %s")
        params.append(value)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
                       "COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0) "
                       f"FROM gateway_usagerecord WHERE {' AND '.join(clauses)}", params)
        return tuple(int(v) for v in cursor.fetchone())


def numbers(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(row[f] for f in NUMBERS)


@pytest.fixture
def fixture_rows() -> int:
    out = io.StringIO()
    call_command("usage_fixture", "--rows", "3000", "--days", "100", "--keys", "6", "--seed", "3",
                 "--batch", "700", stdout=out)
    assert "Wrote 3000 usage rows" in out.getvalue()
    return 3000


def test_usage_fixture_writes_a_realistic_mix_through_the_write_path(fixture_rows):
    assert UsageRecord.objects.count() == fixture_rows
    for span in ("hour", "day"):
        assert sum(UsageRollup.objects.filter(span=span).values_list("requests", flat=True)) == fixture_rows
    models = set(UsageRecord.objects.values_list("requested_model", flat=True))
    assert any(m.startswith("claude-") for m in models) and any(m.startswith("gpt-") for m in models)
    assert any("(" in m for m in models)
    assert set(UsageRecord.objects.values_list("outcome", flat=True)) >= {"ok", "upstream_error"}
    assert set(UsageRecord.objects.values_list("stream", flat=True)) == {True, False}
    assert UsageRecord.objects.filter(credential__isnull=False).exists()
    assert UsageRecord.objects.values("api_key").distinct().count() == 6
    oldest = UsageRecord.objects.order_by("created_at").first()
    assert oldest is not None and oldest.created_at > timezone.now() - timedelta(days=100, minutes=1)


def test_usage_fixture_refuses_nonsense():
    with pytest.raises(CommandError):
        call_command("usage_fixture", "--rows", "10", "--days", "0", stdout=io.StringIO())


def ranges(now: datetime) -> dict[str, Range]:
    today = now.astimezone(UTC).date()
    out = {p: reports.period_range(p, now) for p in reports.PERIODS}
    out.update({
        "all time": Range(),
        "custom days": Range.of_dates(today - timedelta(days=40), today - timedelta(days=12)),
        "odd hours": Range.of(now - timedelta(days=3, hours=5, minutes=17), now - timedelta(hours=7, minutes=40)),
        "within a day": Range.of(now - timedelta(hours=20, minutes=3), now - timedelta(hours=2)),
        "open start": Range.of(None, now - timedelta(days=9, minutes=30)),
    })
    return out


def test_every_grouping_over_every_range_totals_the_raw_rows(fixture_rows):
    now = timezone.now()
    for name, span in ranges(now).items():
        raw = raw_sums(span)
        assert raw[0] > 0, name
        for by in reports.GROUPS:
            rows = reports.totals(by, span)
            assert numbers(reports.summed(rows)) == raw, (name, by)
            page = reports.report(by, span)
            assert numbers(page.total) == raw, (name, by)
            assert numbers(reports.summed(page.chart)) == raw, (name, by, "chart")
            assert [list(r)[:len(reports.SHOWN[by])] for r in rows] == [list(reports.SHOWN[by])] * len(rows)


def test_a_users_and_a_keys_totals_are_their_raw_rows(fixture_rows):
    record = UsageRecord.objects.select_related("api_key", "user").first()
    assert record is not None
    span = reports.period_range("30d")
    mine = reports.report("model", span, user=record.user, hourly=False)
    assert numbers(mine.total) == raw_sums(span, user_id=record.user_id)
    assert len(mine.chart) == 30
    key = reports.totals("day", span, api_key=record.api_key)
    assert numbers(reports.summed(key)) == raw_sums(span, api_key_id=record.api_key_id)


def test_groups_name_keys_users_credentials_and_providers(fixture_rows):
    by_key = reports.totals("key")
    assert len(by_key) == 6 and all(r["key_name"].startswith("fixture-") and r["user"] for r in by_key)
    assert {r["user"] for r in reports.totals("user")} == {f"fixture-user-0{n}" for n in range(3)}
    assert {r["provider"] for r in reports.totals("provider")} == {"claude", "codex"}
    credentials = {r["credential"] for r in reports.totals("credential")}
    assert None in credentials  # rejected requests had no account
    assert any(c and c.startswith("claude:fixture-claude-") for c in credentials)


def test_model_levels_are_grouped_with_their_model(fixture_rows):
    models = [r["model"] for r in reports.totals("model")]
    assert models and not any("(" in m for m in models) and len(models) == len(set(models))


def test_range_edges_count_each_request_once():
    day = datetime(2026, 3, 10, tzinfo=UTC)
    times = [day - timedelta(minutes=1), day, day + timedelta(hours=10, minutes=30), day + timedelta(days=1, hours=2)]
    write_rows([UsageRow(endpoint="messages", created_at=at, input_tokens=10 ** n) for n, at in enumerate(times)])

    def inputs(span: Range) -> int:
        return reports.summed(reports.totals("day", span))["input_tokens"]

    assert inputs(Range.of(day - timedelta(hours=1), day + timedelta(hours=11))) == 111
    assert inputs(Range.of(day, day + timedelta(hours=10))) == 10
    assert inputs(Range.of(day - timedelta(minutes=30), day + timedelta(days=1, hours=3))) == 1111  # rounded out
    assert inputs(Range.of_dates(day.date(), day.date())) == 110
    assert inputs(Range.of(day + timedelta(hours=11))) == 1000
    assert inputs(Range()) == 1111
    days = {r["day"]: r["input_tokens"] for r in reports.totals("day")}
    assert days == {"2026-03-09": 1, "2026-03-10": 110, "2026-03-11": 1000}


def test_reports_never_read_raw_records(fixture_rows, client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "", "pw"))
    pages = [f"/admin/usage/?by={by}&period={p}" for by in reports.GROUPS for p in reports.PERIODS]
    pages += ["/admin/usage/csv/?by=key&period=90d", "/admin/usage/?by=model&from=2026-01-01&to=2026-12-31"]
    with CaptureQueriesContext(connection) as queries:
        for url in pages:
            assert client.get(url).status_code == 200
    assert not [q["sql"] for q in queries.captured_queries if "gateway_usagerecord" in q["sql"]]


def test_short_ranges_are_charted_per_hour(fixture_rows):
    page = reports.report("key", reports.period_range("24h"))
    assert page.hourly and len(page.chart) == 24 and page.chart[-1]["day"].endswith(":00")
    assert not reports.report("key", reports.period_range("7d")).hourly
