"""Estimated cost in usage reports: each model's tokens at that model's catalog prices."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from credentials.models import Model
from gateway.usage import reports
from gateway.usage.rows import UsageRow
from gateway.usage.store import write_rows

pytestmark = pytest.mark.django_db


def record(requested: str, upstream: str = "", **tokens: int) -> None:
    write_rows([UsageRow(created_at=timezone.now(), endpoint="messages", requested_model=requested,
                         upstream_model=upstream, **tokens)])


@pytest.fixture
def catalog():
    Model.objects.all().delete()
    Model.objects.create(name="claude-x", provider="claude", upstream_id="claude-x-20260101", aliases=["x"],
                         input_price=Decimal(2), output_price=Decimal(10))  # no cache prices: input price
    Model.objects.create(name="gpt-y", provider="codex")  # no prices at all


def test_tokens_are_priced_by_name_alias_or_suffixed_name(catalog):
    record("x", "claude-x-20260101", input_tokens=1_000_000)            # alias: $2
    record("claude-x(high)", "", output_tokens=100_000)                  # suffix stripped: $1
    record("claude-x", "claude-x-20260101", cache_read_tokens=500_000)   # cache read at the input price: $1
    record("gpt-y", "gpt-y", input_tokens=10_000_000)                    # unpriced: not counted
    [row] = reports.totals("user")
    assert row["estimated_cost_usd"] == 4.0 and row["requests"] == 4
    by_model = {r["model"]: r["estimated_cost_usd"] for r in reports.totals("model")}
    # A model(level) name is grouped and priced with its model.
    assert by_model == {"x": 2.0, "claude-x": 2.0, "gpt-y": None}
    assert reports.summed(reports.totals("model"))["estimated_cost_usd"] == 4.0


def test_no_prices_anywhere_means_no_estimate(catalog):
    record("gpt-y", "gpt-y", input_tokens=5)
    assert reports.totals("day")[0]["estimated_cost_usd"] is None
    assert reports.summed([])["estimated_cost_usd"] is None


def test_a_model_known_only_by_its_upstream_id_is_priced(catalog):
    record("claude-x-20260101", "claude-x-20260101", output_tokens=1_000_000)
    assert reports.totals("model") == [{"model": "claude-x-20260101", "requests": 1, "input_tokens": 0,
                                        "output_tokens": 1_000_000, "cache_read_tokens": 0,
                                        "cache_write_tokens": 0, "estimated_cost_usd": 10.0,
                                        "cache_hit_rate": None}]  # no input at all


def test_every_seeded_claude_model_gets_list_prices():
    from importlib import import_module

    seeded = import_module("credentials.migrations.0005_seed_claude_prices")
    claude = {m[0] for m in import_module("credentials.migrations.0002_seed_models").MODELS if m[2] == "claude"}
    assert set(seeded.PRICED) == claude and set(seeded.PRICED.values()) <= set(seeded.TIERS)
