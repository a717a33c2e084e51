"""The conversations tables: /admin/usage/?by=conversation for staff over every key, and /me/usage/'s for a
teammate over their own keys only, each with the cache hit rate; the report's other tables gain the rate too."""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db

LONG = "0123456789abcdef-" * 3 + "end"  # 54 characters: a long session id, as Claude Code's metadata may carry


@pytest.fixture
def world(api_key_factory: Any, usage_factory: Any, priced_catalog: None) -> dict[str, Any]:
    now = timezone.now()
    laptop, _ = api_key_factory("alice", name="laptop")
    ci, _ = api_key_factory("alice", name="ci")
    desk, _ = api_key_factory("bob", name="desk")
    usage_factory(laptop, at=now - timedelta(minutes=30), conversation=LONG, input_tokens=100,
                  cache_write_tokens=2000, output_tokens=50)
    usage_factory(laptop, at=now - timedelta(minutes=20), conversation=LONG, input_tokens=10,
                  cache_read_tokens=2000, cache_write_tokens=150, output_tokens=60)
    usage_factory(ci, "gpt-5.5", at=now - timedelta(minutes=10), conversation="ci-run-7", input_tokens=30,
                  cache_read_tokens=90, output_tokens=3)
    usage_factory(laptop, at=now - timedelta(minutes=5), input_tokens=5)  # no conversation
    usage_factory(desk, at=now - timedelta(minutes=1), conversation="bobs-secret-session", input_tokens=40,
                  cache_read_tokens=10)
    return {"laptop": laptop, "ci": ci, "desk": desk}


def body(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def test_staff_see_every_keys_conversations_with_hit_rates(staff_client: Any, world: dict[str, Any]) -> None:
    response = staff_client.get("/admin/usage/?by=conversation&period=24h")
    assert response.status_code == 200
    rows = response.context["conversations"]
    assert [r["conversation"] for r in rows] == ["bobs-secret-session", "ci-run-7", LONG]
    page = response.content.decode()
    # a long id shortened, the whole one in its title; the rate as a percent: 2000 / (110 + 2000 + 2150)
    assert f'<code title="{LONG}">0123456789ab…</code>' in page
    assert ">46.95%<" in page and ">75%<" in page and ">20%<" in page
    assert 'id="conversation-table"' in page and 'id="usage-table"' not in page
    # newest first by default; the other order is one click away, and the CSV follows it
    assert 'href="?by=conversation&amp;period=24h&amp;order=cost"' in page
    assert "/admin/usage/csv/?by=conversation&amp;period=24h&amp;order=cost" in staff_client.get(
        "/admin/usage/?by=conversation&period=24h&order=cost").content.decode()
    # each conversation opens its records
    assert f"/admin/gateway/usagerecord/?conversation={LONG}&amp;api_key={world['laptop'].pk}" in page


def test_staff_conversation_table_for_one_key_and_costliest_first(staff_client: Any, world: dict[str, Any]) -> None:
    one_key = staff_client.get(f"/admin/usage/?by=conversation&period=24h&key={world['laptop'].pk}")
    assert [r["conversation"] for r in one_key.context["conversations"]] == [LONG]
    costliest = staff_client.get("/admin/usage/?by=conversation&period=24h&order=cost")
    # Sonnet is priced (the long one, then bob's); GPT has no price here, so it comes last
    assert [r["conversation"] for r in costliest.context["conversations"]] == [LONG, "bobs-secret-session",
                                                                             "ci-run-7"]


def test_the_conversation_records_link_filters_the_record_list(staff_client: Any, world: dict[str, Any]) -> None:
    response = staff_client.get(f"/admin/gateway/usagerecord/?conversation={LONG}&api_key={world['laptop'].pk}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2


def test_staff_conversation_csv(staff_client: Any, world: dict[str, Any]) -> None:
    response = staff_client.get("/admin/usage/csv/?by=conversation&period=24h")
    assert response["Content-Disposition"] == 'attachment; filename="proxyhub-usage-conversation-24h.csv"'
    lines = list(csv.DictReader(io.StringIO(body(response))))
    assert [(r["conversation"], r["user"], r["cache_hit_rate"]) for r in lines] == [
        ("bobs-secret-session", "bob", "0.2"), ("ci-run-7", "alice", "0.75"), (LONG, "alice", "0.4695")]


def test_the_other_groupings_show_the_hit_rate_on_the_page_and_in_the_csv(staff_client: Any,
                                                                       world: dict[str, Any]) -> None:
    page = staff_client.get("/admin/usage/?by=key&period=24h").content.decode()
    # laptop: 2000 / (115 + 2000 + 2150); the total: 2100 / (185 + 2100 + 2150)
    assert "Cache hit</th>" in page and ">46.89%<" in page and ">47.35%<" in page
    lines = list(csv.DictReader(io.StringIO(body(staff_client.get("/admin/usage/csv/?by=key&period=24h")))))
    assert {r["key_name"]: r["cache_hit_rate"] for r in lines} == {"laptop": "0.4689", "ci": "0.75", "desk": "0.2"}
    # the conversation grouping is offered beside the others
    assert 'href="?by=conversation&amp;period=24h"' in page


def test_a_teammate_sees_only_their_own_conversations(alice_client: Any, bob_client: Any,
                                                      world: dict[str, Any]) -> None:
    response = alice_client.get("/me/usage/?period=24h")
    assert [r["conversation"] for r in response.context["conversations"]] == ["ci-run-7", LONG]
    page = response.content.decode()
    assert 'id="conversations"' in page and f'title="{LONG}"' in page and ">46.95%<" in page
    assert "bobs-secret-session" not in page and world["desk"].prefix not in page
    # narrowed to one of their keys, and never another's (404, as for the rest of the page)
    only_ci = alice_client.get(f"/me/usage/?period=24h&key={world['ci'].pk}")
    assert [r["conversation"] for r in only_ci.context["conversations"]] == ["ci-run-7"]
    assert alice_client.get(f"/me/usage/?key={world['desk'].pk}").status_code == 404
    bobs = bob_client.get("/me/usage/?period=24h&order=cost").content.decode()
    assert "bobs-secret-session" in bobs and "ci-run-7" not in bobs and LONG not in bobs


def test_a_teammate_orders_by_cost(alice_client: Any, world: dict[str, Any]) -> None:
    response = alice_client.get("/me/usage/?period=24h&order=cost")
    assert [r["conversation"] for r in response.context["conversations"]] == [LONG, "ci-run-7"]
    page = response.content.decode()
    assert 'href="?period=24h&amp;order=recent"' in page
