"""/me/usage/: a teammate's own last 30 days, per day and model, with a chart and CSV."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from gateway.usage import reports

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(api_key_factory, usage_factory, priced_catalog):
    """alice: two keys, four recent records and one too old; bob: one record."""
    now = timezone.now()
    laptop, _ = api_key_factory("alice", name="laptop")
    ci, _ = api_key_factory("alice", name="ci")
    bobs, _ = api_key_factory("bob")
    usage_factory(laptop, "claude-sonnet-4-6", input_tokens=100, output_tokens=10, cache_read_tokens=1000,
                  cache_write_tokens=50)
    usage_factory(laptop, "claude-sonnet-4-6", input_tokens=200, output_tokens=20)
    usage_factory(ci, "gpt-5.5", at=now - timedelta(days=2), input_tokens=7, output_tokens=3)
    usage_factory(ci, "gpt-5.5", at=now - timedelta(days=40), input_tokens=99999)
    usage_factory(bobs, "gpt-5.4", input_tokens=55555, output_tokens=44444)
    return {"laptop": laptop, "ci": ci, "bob": bobs, "today": timezone.localdate(now)}


def test_usage_page_totals_match_the_records(alice_client, world):
    response = alice_client.get("/me/usage/")
    assert response.status_code == 200
    by_model = {r["model"]: r for r in response.context["models"]}
    assert by_model == {
        # (300 x $3 + 30 x $15 + 1000 x $0.30 + 50 x $3.75) per million tokens
        "claude-sonnet-4-6": {"model": "claude-sonnet-4-6", "requests": 2, "input_tokens": 300,
                              "output_tokens": 30, "cache_read_tokens": 1000, "cache_write_tokens": 50,
                              "estimated_cost_usd": 0.001838},
        "gpt-5.5": {"model": "gpt-5.5", "requests": 1, "input_tokens": 7, "output_tokens": 3,
                    "cache_read_tokens": 0, "cache_write_tokens": 0, "estimated_cost_usd": None},
    }
    assert response.context["total"] == {"requests": 3, "input_tokens": 307, "output_tokens": 33,
                                         "cache_read_tokens": 1000, "cache_write_tokens": 50,
                                         "estimated_cost_usd": 0.001838}
    days = {d["day"]: d for d in response.context["days"]}
    assert len(days) == 30 and max(days) == world["today"].isoformat()
    assert days[world["today"].isoformat()]["requests"] == 2
    assert days[(world["today"] - timedelta(days=2)).isoformat()]["input_tokens"] == 7
    page = response.content.decode()
    assert ">307<" in page and ">1,000<" in page and "claude-sonnet-4-6" in page
    # The small cost shows as itself ($0.001838), not as $0.00; the headings are words, not field names.
    assert ">$0.0018<" in page and ">$0.00<" not in page
    assert "Est. cost</th>" in page and "estimated_cost_usd" not in page


def test_usage_page_never_shows_another_teammates_usage(alice_client, world):
    page = alice_client.get("/me/usage/").content.decode()
    assert "55555" not in page and "gpt-5.4" not in page and "99999" not in page
    assert world["bob"].prefix not in page


def test_usage_page_narrows_to_one_own_key(alice_client, world):
    response = alice_client.get(f"/me/usage/?key={world['ci'].pk}")
    assert [r["model"] for r in response.context["models"]] == ["gpt-5.5"]
    assert response.context["total"]["requests"] == 1


def test_charts_are_inline_svg_with_a_bar_per_day_and_no_script(alice_client, world):
    page = alice_client.get("/me/usage/").content.decode()
    svgs = [page[i:page.index("</svg>", i)] for i in range(len(page)) if page.startswith("<svg", i)]
    labels = [svg[svg.index('aria-label="') + 12:svg.index('">')] for svg in svgs]
    assert labels[:3] == ["Requests per day (requests)", "Tokens per day (tokens)", "Estimated cost per day (USD)"]
    requests = svgs[0]
    assert requests.count('class="hit"') == 30  # one column per day of the 30
    assert "<script" not in page and "http://" not in requests.replace('xmlns="http://www.w3.org/2000/svg"', "")
    today = world["today"].isoformat()
    assert f"<title>{today}\nOK: 2\n" in requests
    # A bar opens that day on this page (never the staff-only record list).
    assert f'href="?period=custom&amp;from={today}&amp;to={today}"' in requests
    assert "/admin/" not in "".join(svgs)


def test_the_range_picker_narrows_to_a_day_and_keeps_the_key(alice_client, world):
    today = world["today"].isoformat()
    response = alice_client.get(f"/me/usage/?from={today}&to={today}&key={world['laptop'].pk}")
    assert response.context["hourly"] and response.context["total"]["requests"] == 2
    page = response.content.decode()
    assert f'value="{today}"' in page and f"key={world['laptop'].pk}" in page
    assert alice_client.get("/me/usage/?period=24h").context["total"]["requests"] == 2
    assert alice_client.get("/me/usage/?period=90d").context["total"]["requests"] == 4


def test_a_user_or_key_in_the_query_never_shows_anyone_elses_usage(alice_client, world):
    bob = world["bob"]
    assert alice_client.get(f"/me/usage/?key={bob.pk}").status_code == 404
    page = alice_client.get(f"/me/usage/?user={bob.user_id}&period=90d").content.decode()
    assert "55555" not in page and "gpt-5.4" not in page and bob.prefix not in page


def body(response) -> str:
    """A CSV download's text; the exports are streamed, never built whole in memory."""
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_csv_export_has_one_line_per_day_and_model(alice_client, world):
    response = alice_client.get("/me/usage/csv/")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert [(r["day"], r["model"], r["requests"], r["input_tokens"]) for r in rows] == [
        ((world["today"] - timedelta(days=2)).isoformat(), "gpt-5.5", "1", "7"),
        (world["today"].isoformat(), "claude-sonnet-4-6", "2", "300"),
    ]
    assert list(rows[0]) == ["day", "model", "requests", "input_tokens", "output_tokens", "cache_read_tokens",
                             "cache_write_tokens", "estimated_cost_usd"]
    assert [r["estimated_cost_usd"] for r in rows] == ["", "0.001838"]


def test_csv_export_of_a_teammate_with_no_usage_is_just_the_header(bob_client):
    assert body(bob_client.get("/me/usage/csv/")) == (
        "day,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,estimated_cost_usd\n")


def test_pages_cost_a_fixed_number_of_queries(alice_client, world, api_key_factory, usage_factory,
                                             django_assert_max_num_queries):
    for n in range(5):
        extra, _ = api_key_factory("alice", name=f"k{n}")
        usage_factory(extra, f"model-{n}", input_tokens=1)
    # Session, user, own keys, prices, the two rollup sums, the key and user names; on Postgres also the
    # savepoint around SET LOCAL work_mem that reports._hashing() adds; the conversations table's newest-first
    # walk (its sums, prices and key names only when there are conversations). The same with 1 key or 6.
    with django_assert_max_num_queries(12):
        alice_client.get("/me/usage/")
    with django_assert_max_num_queries(8):
        alice_client.get("/me/")


def test_daily_totals_fill_days_without_usage_with_zeros(world):
    since = reports.period_start("7d")
    days = reports.daily_totals(since=since, user=world["laptop"].user)
    assert len(days) == 7 and [d["requests"] for d in days] == [0, 0, 0, 0, 1, 0, 2]


def test_day_chart_scales_bars_to_the_busiest_day():
    days = [{"day": f"2026-01-0{i}", "requests": 1, "input_tokens": t, "output_tokens": 0, "cache_read_tokens": 0,
             "cache_write_tokens": 0} for i, t in ((1, 0), (2, 50), (3, 100))]
    chart = reports.day_chart(days, width=300, height=101)
    assert [b.height for b in chart.bars] == [0, 50, 100]
    assert [b.y for b in chart.bars] == [101, 51, 1]
    assert chart.peak == 100 and chart.first_label == "2026-01-01"


@pytest.mark.django_db(transaction=True)
async def test_csv_is_streamed_chunk_by_chunk_under_asgi(alice, api_key_factory, usage_factory, priced_catalog):
    # Under ASGI a sync iterator would be read to the end before the first byte (Django warns, and
    # warnings are errors here): the export hands the server an async iterator instead.
    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    key, _ = await sync_to_async(api_key_factory)("alice")
    await sync_to_async(usage_factory)(key, input_tokens=5)
    client = AsyncClient()
    try:
        await client.aforce_login(alice)
        response = await client.get("/me/usage/csv/")
        assert response.streaming and response.is_async
        text = b"".join([chunk async for chunk in response.streaming_content]).decode()
    finally:
        # The view ran in asgiref's thread: left open, its connection keeps Postgres from dropping the test db.
        await sync_to_async(connections.close_all)()
    assert text.splitlines()[1].split(",")[1:4] == ["claude-sonnet-4-6", "1", "5"]
