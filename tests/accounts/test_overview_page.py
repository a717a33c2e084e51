"""/admin/overview/: the staff Overview's numbers against raw SQL, its filters in the URL, its drill-down links,
its account cards and forecasts, and who may see it."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from credentials.models import Credential
from gateway.usage import overview

pytestmark = pytest.mark.django_db

URL = "/admin/overview/"


@pytest.fixture
def world(api_key_factory, usage_factory, priced_catalog):
    now = timezone.now()
    alice, _ = api_key_factory("alice", name="laptop")
    bob, _ = api_key_factory("bob", name="desk")
    usage_factory(alice, "claude-sonnet-4-6", input_tokens=100, output_tokens=20, cache_read_tokens=300,
                  duration_ms=1000, ttfb_ms=200)
    usage_factory(alice, "claude-sonnet-4-6(high)", input_tokens=50, output_tokens=5, duration_ms=3000, ttfb_ms=400,
                  provider="claude")
    usage_factory(alice, "gpt-5.5", input_tokens=5, output_tokens=1, outcome="upstream_error", status_code=502,
                  provider="codex", duration_ms=500)
    usage_factory(bob, "gpt-5.5", at=now - timedelta(days=3), input_tokens=7, output_tokens=3, provider="codex")
    usage_factory(bob, "gpt-5.5", at=now - timedelta(days=3), input_tokens=1, outcome="rejected", status_code=429,
                  provider="codex")
    usage_factory(bob, "gpt-5.5", at=now - timedelta(days=20), input_tokens=1000, provider="codex")
    return {"alice": alice, "bob": bob}


def raw(where: str = "", params: tuple = ()) -> tuple[int, int]:
    """(requests, tokens) straight from the records, for comparison with the page."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(input_tokens + cache_read_tokens + cache_write_tokens "
                       "+ output_tokens), 0) FROM gateway_usagerecord WHERE created_at >= %s" + where,
                       (overview.parse_filters({}).span.since, *params) if "%since" not in where else params)
        count, tokens = cursor.fetchone()
    return int(count), int(tokens)


def totals(response) -> tuple[int, int]:
    t = response.context["total"]
    return t.sums["requests"], t.tokens


def test_staff_only(client, alice_client, django_user_model, world):
    assert client.get(URL)["Location"].startswith("/admin/login/")
    response = alice_client.get(URL)  # a teammate without staff status: the admin's sign-in, nothing of the pool
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    staff = Client()
    staff.force_login(clerk)
    assert staff.get(URL).status_code == 403
    assert staff.get(URL + "csv/").status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    response = staff.get(URL)
    assert response.status_code == 200 and response.context["pool"] is None  # no credential permission


def test_totals_equal_raw_sums_for_each_filter(staff_client, world):
    bob = world["bob"]
    cases = [
        ({}, ""),
        ({"provider": "codex"}, " AND provider = %s", ("codex",)),
        ({"model": "claude-sonnet-4-6"}, " AND (requested_model = %s OR requested_model LIKE %s)",
         ("claude-sonnet-4-6", "claude-sonnet-4-6(%")),
        ({"user": bob.user_id}, " AND user_id = %s", (bob.user_id,)),
        ({"key": bob.pk}, " AND api_key_id = %s", (bob.pk,)),
        ({"outcome": "error"}, " AND outcome IN ('upstream_error', 'rejected')"),
        ({"outcome": "ok", "provider": "codex"}, " AND outcome = 'ok' AND provider = 'codex'"),
    ]
    for case in cases:
        query, where, *params = case
        response = staff_client.get(URL, query)
        assert response.status_code == 200
        assert totals(response) == raw(where, tuple(params[0]) if params else ()), query
    # 30 days reaches the 20-day-old row; 24 hours only today's.
    assert totals(staff_client.get(URL, {"period": "30d"}))[0] == 6
    assert totals(staff_client.get(URL, {"period": "24h"}))[0] == 3
    # A custom range of whole UTC days: the day three days ago holds bob's two; the form shows the dates.
    day = (timezone.now() - timedelta(days=3)).astimezone(dt_timezone.utc).date().isoformat()
    response = staff_client.get(URL, {"from": day, "to": day})
    assert totals(response) == (2, 11) and response.context["f"].period == "custom"
    assert f'name="from" value="{day}"' in response.content.decode()
    assert response.context["data"].hourly and len(response.context["data"].buckets) == 24  # a day: per hour


def test_errors_cost_and_cache_hit_rate(staff_client, world):
    response = staff_client.get(URL, {"period": "7d"})
    total = response.context["total"]
    assert total.errors == 2 and round(total.error_rate, 1) == round(2 / 5 * 100, 1)
    # Sonnet at $3 / $15 per million, cache reads at its cache price (priced_catalog): GPT unpriced.
    models = {r["model"]: r for r in response.context["data"].models}
    assert set(models) == {"claude-sonnet-4-6", "gpt-5.5"}  # the (high) row counted with its model
    assert models["claude-sonnet-4-6"]["b"].sums["requests"] == 2
    assert models["gpt-5.5"]["b"].cost is None and models["claude-sonnet-4-6"]["b"].cost > 0
    keys = {r["prefix"]: r for r in response.context["data"].keys}
    alice = keys[world["alice"].prefix]
    assert alice["hit_rate"] == pytest.approx(300 / (100 + 300 + 50 + 5) * 100, abs=0.01)
    assert response.context["total"].avg_duration == pytest.approx((1000 + 3000 + 500 + 0 + 0) / 5)
    body = response.content.decode()
    assert "Cache hit" in body and f"{alice['hit_rate']:.1f}%" in body


def test_filters_stay_in_the_url_and_every_link(staff_client, world):
    bob = world["bob"]
    query = {"period": "30d", "provider": "codex", "user": str(bob.user_id), "outcome": "ok"}
    response = staff_client.get(URL, query)
    body = response.content.decode()
    assert 'value="30d" selected' in body and 'value="codex" selected' in body
    csv_href = response.context["csv_query"]
    assert parse_qs(csv_href) == {k: [v] for k, v in query.items()}
    # Each chart bar links to the record list with the filters and its bucket.
    for c in response.context["charts"]:
        for col in c.columns:
            q = parse_qs(urlsplit(col.href).query)
            assert q["provider"] == ["codex"] and q["user"] == [str(bob.user_id)]
            assert "created_at__gte" in q and "created_at__lt" in q
    # The CSV has the same numbers as the page.
    data = b"".join(staff_client.get(URL + "csv/", query).streaming_content).decode()
    lines = list(csv.DictReader(io.StringIO(data)))
    assert sum(int(r["requests"]) for r in lines) == response.context["total"].sums["requests"] == 2


def test_drill_down_links_open_the_matching_records(staff_client, world):
    response = staff_client.get(URL, {"period": "7d"})
    ctx = response.context

    def listed(href: str) -> int:
        page = staff_client.get(href)
        assert page.status_code == 200, (href, page.status_code, page.get("Location"))
        return page.context["cl"].result_count

    assert listed(ctx["records_url"]) == ctx["total"].sums["requests"] == 5
    assert listed(ctx["errors_url"]) == 2
    for r in ctx["data"].users:
        assert listed(r["records"]) == r["b"].sums["requests"], r["name"]
    for r in ctx["data"].keys:
        assert listed(r["records"]) == r["b"].sums["requests"], r["prefix"]
    for r in ctx["data"].models:
        assert listed(r["records"]) == r["b"].sums["requests"], r["model"]
    # A day bar of the requests chart: three days ago holds bob's two.
    requests_chart = ctx["charts"][0]
    counts = [listed(col.href) for col in requests_chart.columns]
    assert counts == [b.sums["requests"] for b in ctx["data"].buckets]
    assert sorted(c for c in counts if c) == [2, 3]
    # A key row links to the usage report of that key over the same period.
    bob_row = next(r for r in ctx["data"].keys if r["prefix"] == world["bob"].prefix)
    assert bob_row["report"] == f"/admin/usage/?key={world['bob'].pk}&period=7d"


def test_query_count_does_not_grow_with_data(staff_client, world, api_key_factory, usage_factory):
    with CaptureQueriesContext(connection) as before:
        assert staff_client.get(URL, {"period": "30d"}).status_code == 200
    for n in range(5):
        key, _ = api_key_factory(f"user{n}")
        usage_factory(key, "gpt-5.5", at=timezone.now() - timedelta(days=n), input_tokens=5)
    Credential.objects.create(provider="claude", label="more", access_token="t", refresh_token="r")
    with CaptureQueriesContext(connection) as after:
        staff_client.get(URL, {"period": "30d"})
    assert len(after) == len(before) <= 16


def test_account_cards_show_state_windows_and_reconnect(staff_client, db):
    now = timezone.now()
    week_reset = now + timedelta(days=3)  # four of seven days gone
    Credential.objects.create(provider="claude", label="main", plan="max", groups=["core"], access_token="t",
                              refresh_token="r", windows={
                                  "5h": {"utilization": 0.2, "reset": (now + timedelta(minutes=295)).timestamp()},
                                  "7d": {"utilization": 0.8, "reset": week_reset.timestamp()},
                                  "7d_opus": {"utilization": 0.1, "reset": week_reset.timestamp()}})
    Credential.objects.create(provider="claude", label="spare", access_token="t", refresh_token="r",
                              status=Credential.Status.NEEDS_RELOGIN, status_reason="invalid_grant")
    Credential.objects.create(provider="codex", label="gpt", access_token="t", refresh_token="r",
                              cooldown_until=now + timedelta(minutes=30))
    response = staff_client.get(URL)
    body = response.content.decode()
    pool = dict(response.context["pool"])
    claude = {a.credential.label: a for a in pool["Claude (Anthropic OAuth)"]}
    assert claude["main"].state == "ready" and claude["spare"].state == "relogin"
    assert pool["ChatGPT Codex (OpenAI OAuth)"][0].state == "cooling"
    gauges = {g.name: g for g in claude["main"].gauges}
    assert [g.label for g in claude["main"].gauges] == ["5-hour", "weekly", "weekly opus"]
    # 80 % in four days: the remaining 20 % last one more day, before the reset in three.
    assert gauges["7d"].forecast.startswith("at this rate it runs out")
    assert gauges["5h"].forecast == "no forecast yet: too little of the window has run"
    assert "core" in body and "max" in body and "invalid_grant" in body
    assert 'href="/admin/credentials/credential/connect/claude/"' in body
    assert str(week_reset.timestamp()) not in body


def test_forecast_rules():
    now = datetime(2026, 12, 3, 12, 0, tzinfo=dt_timezone.utc)  # a Thursday
    reset = now + timedelta(days=3)
    # Half the week used in four days: at 12.5 %/day the other half lasts four more, past the reset.
    assert overview.forecast(50, reset, 10080, now) == "at this rate it lasts until the reset"
    # 80 % in four days: 20 %/day, so the rest lasts a day: Friday noon.
    assert overview.forecast(80, reset, 10080, now) == "at this rate it runs out Fri Dec 04 12:00"
    assert overview.forecast(100, reset, 10080, now).startswith("full until the reset")
    assert overview.forecast(10, now + timedelta(minutes=299), 300, now).startswith("no forecast yet")
    assert overview.forecast(10, None, 300, now).startswith("no forecast")
    assert overview.forecast(10, now - timedelta(minutes=1), 300, now).startswith("reset passed")


def test_staff_land_on_the_overview_after_signing_in(client, django_user_model):
    django_user_model.objects.create_superuser("lead", "", "pw-lead-123")
    page = client.get("/admin/login/?next=/admin/")
    assert 'value="/admin/overview/"' in page.content.decode()
    # Sent to another admin page, the sign-in goes there.
    elsewhere = client.get("/admin/login/?next=/admin/accounts/apikey/").content.decode()
    assert 'value="/admin/accounts/apikey/"' in elsewhere
    response = client.post("/admin/login/?next=/admin/", {"username": "lead", "password": "pw-lead-123",
                                                          "next": "/admin/overview/"})
    assert response.status_code == 302 and response["Location"] == "/admin/overview/"
    index = client.get("/admin/")
    assert 'href="/admin/overview/"' in index.content.decode()


def test_nice_axis_tops():
    assert [overview._nice(v) for v in (0, 0.37, 7, 10, 123, 2.5, 999)] == [1, 0.5, 10, 10, 200, 2.5, 1000]


def test_latency_histograms_give_p50_and_p95(staff_client, world):
    from gateway.usage.models import DURATION_BINS, TTFB_BINS, UsageRollup

    # The rollups' histograms count each record once per span, in the bucket its value falls in.
    day = UsageRollup.objects.filter(span="day")
    assert sum(sum(r) for r in day.values_list(*DURATION_BINS)) == 6
    assert sum(sum(r) for r in day.values_list(*TTFB_BINS)) == 2  # only two records sent a first byte
    total = staff_client.get(URL, {"period": "7d"}).context["total"]
    # Durations 1000 (on the 1 s bound), 3000, 500, 0, 0: four within 1 s, one within 5 s.
    assert total.percentile("duration", 0.5) == 1000 and total.percentile("duration", 0.95) == 5000
    # First bytes 200 and 400 ms: one each in the 250 and 500 ms buckets.
    assert total.percentile("ttfb", 0.5) == 250 and total.percentile("ttfb", 0.95) == 500
    assert total.latency_text == "p50 ≤ 1.0 s, p95 ≤ 5.0 s; first byte p50 ≤ 250 ms, p95 ≤ 500 ms"


def test_a_duration_past_the_last_bound_reads_as_longer_than_it(staff_client, api_key_factory, usage_factory):
    key, _ = api_key_factory("slow")
    usage_factory(key, duration_ms=500_000)
    total = staff_client.get(URL, {"period": "24h"}).context["total"]
    assert total.percentile_text("duration", 0.5) == "> 80.0 s"


def test_keyless_rows_drill_down_to_keyless_records(staff_client, world):
    from gateway.usage.rows import UsageRow
    from gateway.usage.store import write_rows

    write_rows([UsageRow(created_at=timezone.now(), api_key_id=None, user_id=None, key_prefix="", endpoint="messages",
                         requested_model="claude-sonnet-4-6", outcome="rejected", status_code=401)])
    ctx = staff_client.get(URL).context
    keyless = next(r for r in ctx["data"].keys if not r["key_id"])
    nobody = next(r for r in ctx["data"].users if not r["user_id"])
    for row in (keyless, nobody):
        assert row["b"].sums["requests"] == 1
        assert staff_client.get(row["records"]).context["cl"].result_count == 1
