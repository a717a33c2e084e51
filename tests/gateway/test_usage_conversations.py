"""The per-conversation report (gateway/usage/conversations.py) and ``usage_report --by conversation``: rows of
known tokens, so every sum, cost and cache hit rate is checked exactly."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Max, Min, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from credentials.models import Model
from gateway.usage import conversations, reports, retention
from gateway.usage.models import ConversationRollup, UsageRecord
from gateway.usage.rows import UsageRow
from gateway.usage.store import write_rows

pytestmark = pytest.mark.django_db

SONNET = "claude-sonnet-4-6"
UTC = dt_timezone.utc


@pytest.fixture
def write(api_key_factory: Any) -> Any:
    """write(key, conversation, minutes_ago, model, **tokens): one usage row through the gateway's write path."""
    now = timezone.now()

    def make(key: Any, conversation: str, minutes_ago: float, model: str = SONNET, **fields: Any) -> UsageRow:
        row = UsageRow(endpoint="messages", created_at=now - timedelta(minutes=minutes_ago), api_key_id=key.pk,
                       user_id=key.user_id, key_prefix=key.prefix, requested_model=model,
                       conversation=conversation, **fields)
        write_rows([row])
        return row

    return make


@pytest.fixture
def world(api_key_factory: Any, write: Any) -> dict[str, Any]:
    """alice's laptop: a two-turn Sonnet conversation that then switched to GPT, a GPT one, requests without a
    conversation and a key check; bob: one recent conversation and one from 40 days ago."""
    Model.objects.update_or_create(name=SONNET, defaults={
        "provider": "claude", "input_price": Decimal(3), "output_price": Decimal(15),
        "cache_read_price": Decimal("0.3"), "cache_write_price": Decimal("3.75")})
    Model.objects.filter(provider="codex").update(input_price=None, output_price=None)
    laptop, _ = api_key_factory("alice", name="laptop")
    bobs, _ = api_key_factory("bob", name="desk")
    # turn 1 writes the cache, turn 2 reads it; then the same session goes on with GPT (a model with a level)
    write(laptop, "sess-a", 50, input_tokens=100, cache_write_tokens=2000, output_tokens=50)
    write(laptop, "sess-a", 40, input_tokens=10, cache_read_tokens=2000, cache_write_tokens=150, output_tokens=60)
    write(laptop, "sess-a", 30, "gpt-5.5(high)", input_tokens=40, cache_read_tokens=1000, output_tokens=5)
    write(laptop, "sess-b", 20, "gpt-5.5", input_tokens=500, cache_read_tokens=1500, output_tokens=7)
    write(laptop, "", 5, input_tokens=99_999, output_tokens=1)  # a Chat client without a session
    write(laptop, "sess-a", 1, input_tokens=77_777, is_check=True)  # `doctor`: never part of a conversation
    write(bobs, "sess-d", 10, input_tokens=300, cache_read_tokens=100, output_tokens=3)
    write(bobs, "sess-old", 40 * 24 * 60, input_tokens=5)
    return {"laptop": laptop, "bob": bobs}


def week() -> reports.Range:
    return reports.period_range("7d")


def test_sums_costs_and_hit_rates_are_exact(world: dict[str, Any]) -> None:
    rows = {r["conversation"]: r for r in conversations.conversations(week())}
    assert set(rows) == {"sess-a", "sess-b", "sess-d"}  # no "" row, no check, nothing older than the week
    a = rows["sess-a"]
    assert (a["key_prefix"], a["key_name"], a["user"]) == (world["laptop"].prefix, "laptop", "alice")
    assert a["api_key_id"] == world["laptop"].pk
    assert a["requests"] == 3 and a["models"] == f"{SONNET}, gpt-5.5"  # most used first; (high) is gpt-5.5
    assert (a["input_tokens"], a["cache_read_tokens"], a["cache_write_tokens"], a["output_tokens"]) == (
        150, 3000, 2150, 115)
    # cache reads over the whole prompt: 3000 / (150 + 3000 + 2150)
    assert a["cache_hit_rate"] == round(3000 / 5300, 4) == 0.566
    # only the Sonnet turns are priced: (110 x $3 + 110 x $15 + 2000 x $0.30 + 2150 x $3.75) / 1e6
    assert a["estimated_cost_usd"] == round((110 * 3 + 110 * 15 + 2000 * 0.3 + 2150 * 3.75) / 1e6, 6)
    assert a["last_seen"] - a["first_seen"] == timedelta(minutes=20)
    b = rows["sess-b"]
    assert b["cache_hit_rate"] == 0.75 and b["estimated_cost_usd"] is None and b["models"] == "gpt-5.5"
    assert set(conversations.COLUMNS) <= set(a)


def test_the_per_key_hit_rate_has_the_same_definition(world: dict[str, Any]) -> None:
    """A key whose every request named a conversation: its rate in the key report equals its conversation's."""
    [bob_row] = [r for r in reports.totals("key", week()) if r["user"] == "bob"]
    [d] = [r for r in conversations.conversations(week()) if r["conversation"] == "sess-d"]
    assert d["cache_hit_rate"] == bob_row["cache_hit_rate"] == 0.25


def test_newest_first_or_costliest_first_and_limited(world: dict[str, Any], write: Any) -> None:
    newest = [r["conversation"] for r in conversations.conversations(week())]
    assert newest == ["sess-d", "sess-b", "sess-a"]
    assert [r["conversation"] for r in conversations.conversations(week(), limit=2)] == ["sess-d", "sess-b"]
    # bob's sess-d is Sonnet, cheaper than sess-a; sess-b is GPT, without prices here, so last
    costliest = [r["conversation"] for r in conversations.conversations(week(), order="cost")]
    assert costliest == ["sess-a", "sess-d", "sess-b"]
    assert [r["conversation"] for r in conversations.conversations(week(), order="cost", limit=1)] == ["sess-a"]
    # both orders sum the same rows
    by_recent = {r["conversation"]: r for r in conversations.conversations(week())}
    by_cost = {r["conversation"]: r for r in conversations.conversations(week(), order="cost")}
    assert by_recent == by_cost
    with pytest.raises(ValueError):
        conversations.conversations(week(), order="tokens")


def test_narrowed_to_one_user_or_one_key(world: dict[str, Any], django_user_model: Any) -> None:
    alice = django_user_model.objects.get(username="alice")
    assert [r["conversation"] for r in conversations.conversations(week(), user=alice)] == ["sess-b", "sess-a"]
    assert [r["conversation"] for r in conversations.conversations(week(), api_key=world["bob"])] == ["sess-d"]
    # all time reaches bob's old conversation
    assert [r["conversation"] for r in conversations.conversations(reports.Range(), api_key=world["bob"])] == [
        "sess-d", "sess-old"]


def test_a_period_counts_only_its_own_days(api_key_factory: Any) -> None:
    """A period is whole UTC days: a conversation that began the day before shows only its turns of the period's
    days, and a range within a day is widened to that whole day."""
    key, _ = api_key_factory("carol")
    late = datetime(2026, 3, 1, 23, 50, tzinfo=UTC)
    for at, model, tokens in ((late, SONNET, 100), (late + timedelta(minutes=20), "gpt-5.5(high)", 40),
                              (late + timedelta(hours=5), "gpt-5.5", 60)):
        write_rows([UsageRow(endpoint="messages", created_at=at, api_key_id=key.pk, user_id=key.user_id,
                             key_prefix=key.prefix, requested_model=model, conversation="night",
                             input_tokens=tokens, cache_read_tokens=tokens)])
    [both] = conversations.conversations(reports.Range())
    assert (both["requests"], both["input_tokens"], both["first_seen"], both["last_seen"]) == (
        3, 200, late, late + timedelta(hours=5))
    second_day = reports.Range.of_dates(date(2026, 3, 2), date(2026, 3, 2))
    for span in (second_day, reports.Range(datetime(2026, 3, 2, 3, tzinfo=UTC), datetime(2026, 3, 2, 4, tzinfo=UTC))):
        [row] = conversations.conversations(span)
        assert (row["requests"], row["models"], row["input_tokens"], row["first_seen"]) == (
            2, "gpt-5.5", 100, late + timedelta(minutes=20))
        assert row["cache_hit_rate"] == 0.5
    assert conversations.conversations(reports.Range.of_dates(date(2026, 3, 3), date(2026, 3, 9))) == []


def test_the_same_conversation_id_on_two_keys_is_two_rows(world: dict[str, Any], write: Any) -> None:
    write(world["bob"], "sess-a", 3, input_tokens=1)
    rows = [(r["conversation"], r["user"], r["requests"]) for r in conversations.conversations(week())]
    assert rows == [("sess-a", "bob", 1), ("sess-d", "bob", 1), ("sess-b", "alice", 1), ("sess-a", "alice", 3)]


def test_the_newest_conversations_take_a_fixed_number_of_queries(world: dict[str, Any], write: Any) -> None:
    for n in range(30):
        write(world["laptop"], f"extra-{n}", 2 + n / 10, input_tokens=n)
    with CaptureQueriesContext(connection) as queries:
        rows = conversations.conversations(week(), limit=20)
    assert len(rows) == 20 and rows[0]["conversation"] == "extra-0"
    # the newest-first walk, the sums, the prices, and the keys with their owners
    assert len(queries) == 4


def test_many_conversations_are_summed_in_chunks(world: dict[str, Any], write: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversations, "PAIRS_PER_QUERY", 2)
    for n in range(5):
        write(world["laptop"], f"extra-{n}", 2 + n, input_tokens=10, cache_read_tokens=30)
    rows = conversations.conversations(week(), limit=7)
    assert [r["conversation"] for r in rows] == ["extra-0", "extra-1", "extra-2", "extra-3", "extra-4", "sess-d",
                                                 "sess-b"]
    assert all(r["cache_hit_rate"] == 0.75 for r in rows[:5])


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("usage_report", *args, stdout=out)
    return out.getvalue()


def test_usage_report_by_conversation_in_every_format(world: dict[str, Any]) -> None:
    rows = json.loads(run("--by", "conversation", "--days", "7", "--format", "json"))
    assert [r["conversation"] for r in rows] == ["sess-d", "sess-b", "sess-a"]
    assert list(rows[0]) == list(conversations.COLUMNS)
    assert rows[2]["cache_hit_rate"] == 0.566 and rows[2]["first_seen"].endswith("+00:00")
    lines = list(csv.DictReader(io.StringIO(run("--by", "conversation", "--days", "7", "--format", "csv"))))
    assert [(r["conversation"], r["cache_hit_rate"]) for r in lines] == [
        ("sess-d", "0.25"), ("sess-b", "0.75"), ("sess-a", "0.566")]
    table = run("--by", "conversation", "--days", "7", "--order", "cost", "--limit", "1").splitlines()
    assert table[0].split() == list(conversations.COLUMNS) and len(table) == 3
    assert table[2].startswith("sess-a ") and table[2].rstrip().endswith(" 0.566")
    assert "sess-old" in run("--by", "conversation", "--key", world["bob"].prefix)
    assert "sess-d" not in run("--by", "conversation", "--user", "alice")


def test_usage_report_by_key_shows_the_hit_rate_in_every_format(world: dict[str, Any]) -> None:
    by_key = {r["user"]: r for r in json.loads(run("--by", "key", "--days", "7", "--format", "json"))}
    assert by_key["bob"]["cache_hit_rate"] == 0.25
    lines = list(csv.DictReader(io.StringIO(run("--by", "key", "--days", "7", "--format", "csv"))))
    assert {r["user"]: r["cache_hit_rate"] for r in lines}["bob"] == "0.25"
    table = run("--by", "key", "--days", "7").splitlines()
    assert table[0].split()[-1] == "cache_hit_rate"
    assert [line for line in table if " bob " in line][0].rstrip().endswith(" 0.25")
    # --key and --user narrow the other groupings too
    assert [r["user"] for r in json.loads(run("--by", "key", "--user", "bob", "--format", "json"))] == ["bob"]


def test_usage_report_refuses_unknown_keys_users_and_limits(world: dict[str, Any]) -> None:
    for args in (("--key", "nope"), ("--user", "nobody"), ("--by", "conversation", "--limit", "0")):
        with pytest.raises(CommandError):
            run(*args)


def test_a_replayed_row_counts_once(world: dict[str, Any]) -> None:
    """A journal replayed after a crash writes the same rows again: the rollup adds only what was inserted."""
    row = UsageRow(endpoint="messages", api_key_id=world["bob"].pk, user_id=world["bob"].user_id,
                   key_prefix=world["bob"].prefix, requested_model=SONNET, conversation="sess-d",
                   input_tokens=700, cache_read_tokens=900)
    assert write_rows([row]) == 1
    assert write_rows([row]) == 0
    [d] = [r for r in conversations.conversations(week()) if r["conversation"] == "sess-d"]
    assert (d["requests"], d["input_tokens"], d["cache_read_tokens"]) == (2, 1000, 1000)


def test_checks_and_rows_without_a_conversation_are_never_rolled_up(world: dict[str, Any]) -> None:
    assert set(ConversationRollup.objects.values_list("conversation", flat=True)) == {
        "sess-a", "sess-b", "sess-d", "sess-old"}
    # sess-a: two Sonnet turns and one gpt-5.5(high) turn, as two models; the check's 77,777 tokens are not there
    per_model: dict[str, list[int]] = {}
    for model, n, tokens in ConversationRollup.objects.filter(conversation="sess-a").values_list(
            "model", "requests", "input_tokens"):  # two rows of a model if the turns straddled midnight
        per_model.setdefault(model, [0, 0])
        per_model[model] = [per_model[model][0] + n, per_model[model][1] + tokens]
    assert per_model == {SONNET: [2, 110], "gpt-5.5": [1, 40]}


def test_pruning_the_records_changes_no_report(world: dict[str, Any]) -> None:
    everything = reports.Range()
    before = {order: conversations.conversations(everything, order=order) for order in conversations.ORDERS}
    assert retention.prune(timezone.now() + timedelta(days=1), 0) == 8
    assert not UsageRecord.objects.exists()
    after = {order: conversations.conversations(everything, order=order) for order in conversations.ORDERS}
    assert after == before and len(before["recent"]) == 4


def test_a_deleted_keys_conversation_keeps_its_user_without_a_link(world: dict[str, Any]) -> None:
    world["bob"].delete()
    [d] = [r for r in conversations.conversations(week()) if r["conversation"] == "sess-d"]
    assert (d["api_key_id"], d["key_name"], d["user"], d["requests"]) == (None, "", "bob", 1)
    assert d["key_prefix"] == world["bob"].prefix


def test_the_fixture_fills_the_rollup_as_a_group_by_over_the_records() -> None:
    call_command("usage_fixture", "--rows", "2000", "--days", "10", "--keys", "4", "--seed", "5",
                 stdout=io.StringIO())
    assert rollup_as_records() == raw_per_conversation() != {}


def rollup_as_records() -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """(key, conversation, model) -> requests, tokens, first and last seen, summed over the rollup's days."""
    rows = (ConversationRollup.objects.values("api_key_id", "conversation", "model")
            .annotate(n=Sum("requests"), i=Sum("input_tokens"), r=Sum("cache_read_tokens"),
                      w=Sum("cache_write_tokens"), o=Sum("output_tokens"), first=Min("first_seen"),
                      last=Max("last_seen")).order_by())
    return {(r["api_key_id"], r["conversation"], r["model"]): (r["n"], r["i"], r["r"], r["w"], r["o"], r["first"],
                                                               r["last"]) for r in rows}


def raw_per_conversation() -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The same from the records (a model(level) counted as its model)."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    for r in UsageRecord.objects.filter(is_check=False).exclude(conversation=""):
        key = (r.api_key_id or 0, r.conversation, r.requested_model.split("(")[0])
        sums = out.setdefault(key, [0, 0, 0, 0, 0, r.created_at, r.created_at])
        for i, v in enumerate((1, r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, r.output_tokens)):
            sums[i] += v
        sums[5], sums[6] = min(sums[5], r.created_at), max(sums[6], r.created_at)
    return {k: tuple(v) for k, v in out.items()}


def test_rows_written_out_of_order_widen_first_and_last_seen(api_key_factory: Any) -> None:
    """A journal replay brings a day's earlier rows after its later ones: the rollup keeps the min and the max
    (on SQLite datetimes are text, with or without microseconds)."""
    key, _ = api_key_factory("dave")
    noon = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for at in (noon, noon - timedelta(seconds=0.5), noon + timedelta(seconds=0.25), noon + timedelta(seconds=0.1)):
        write_rows([UsageRow(endpoint="messages", created_at=at, api_key_id=key.pk, user_id=key.user_id,
                             key_prefix=key.prefix, requested_model=SONNET, conversation="late", input_tokens=1)])
    [row] = ConversationRollup.objects.all()
    assert (row.requests, row.first_seen, row.last_seen) == (
        4, noon - timedelta(seconds=0.5), noon + timedelta(seconds=0.25))
