"""Usage totals grouped by key, user, model or day, plus the report pages' chart and CSV.

Every function here is one or two aggregate queries over UsageRecord, whatever
the number of keys, users or days: the pages and the usage_report command call
them and never loop over records.

Each row also carries an estimated cost: its tokens priced per model with the
list prices an admin keeps in the model catalog (None when none of the row's
models has prices). Rows are summed per (group, model) in SQL and priced here.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import ApiKey
from credentials.models import Model
from gateway.models import UsageRecord

GROUPS = {
    "key": ("key_prefix", "api_key__name", "user__username"),
    "user": ("user__username",),
    "model": ("requested_model",),
    "day": ("day",),
}
RENAMES = {"api_key__name": "key_name", "user__username": "user", "requested_model": "model"}
TOTALS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
COST = "estimated_cost_usd"
MILLION = Decimal(1_000_000)
# The report pages' periods, in the order they are offered.
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def usage_totals(by: str, since: Any = None) -> list[dict[str, Any]]:
    """One dict per group: the group's fields plus requests and token sums."""
    return totals(by, since=since)


def period_start(period: str, now: datetime | None = None) -> datetime:
    """Where a PERIODS entry starts: 24 h back, or local midnight so "7d" is today and the six days before."""
    now = now or timezone.now()
    span = PERIODS[period]
    if span < timedelta(days=1):
        return now - span
    first = timezone.localdate(now) - timedelta(days=span.days - 1)
    return timezone.make_aware(datetime.combine(first, datetime.min.time()))


def columns(by: str) -> list[str]:
    """The keys of a totals(by) row, in order (also the CSV header)."""
    return [RENAMES.get(f, f) for f in GROUPS[by]] + ["requests", *TOTALS, COST]


def records(*, since: datetime | None = None, user: AbstractBaseUser | None = None,
            api_key: ApiKey | None = None) -> QuerySet[UsageRecord]:
    """Usage records from ``since`` on, narrowed to one user and/or one key when given."""
    qs = UsageRecord.objects.all()
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if user is not None:
        qs = qs.filter(user=user)
    if api_key is not None:
        qs = qs.filter(api_key=api_key)
    return qs


def totals(by: str, *, since: datetime | None = None, user: AbstractBaseUser | None = None,
           api_key: ApiKey | None = None) -> list[dict[str, Any]]:
    """Like usage_totals(), narrowed to one user and/or key; ``by`` is a GROUPS key (KeyError otherwise)."""
    return _grouped(records(since=since, user=user, api_key=api_key), GROUPS[by])


def day_model_totals(*, since: datetime | None = None, user: AbstractBaseUser | None = None,
                     api_key: ApiKey | None = None) -> list[dict[str, Any]]:
    """One dict per (day, model), oldest day first: the self-service CSV export."""
    return _grouped(records(since=since, user=user, api_key=api_key), ("day", "requested_model"))


def daily_totals(*, since: datetime, user: AbstractBaseUser | None = None, api_key: ApiKey | None = None,
                 until: datetime | None = None) -> list[dict[str, Any]]:
    """One dict per calendar day from ``since`` to ``until`` (default now), days without usage as zeros."""
    rows = {r["day"]: r for r in totals("day", since=since, user=user, api_key=api_key)}
    first = timezone.localdate(since)
    last = timezone.localdate(until or timezone.now())
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [rows.get(d.isoformat()) or _zero_day(d) for d in days]


def summed(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """requests, token and cost sums over ``rows`` (for a "total" line)."""
    out: dict[str, Any] = dict.fromkeys(("requests", *TOTALS), 0)
    costs = []
    for row in rows:
        for field in ("requests", *TOTALS):
            out[field] += row[field]
        if row.get(COST) is not None:
            costs.append(row[COST])
    out[COST] = round(sum(costs), 6) if costs else None
    return out


@dataclass(frozen=True)
class Prices:
    """USD per million tokens."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal

    def cost(self, tokens: dict[str, int]) -> Decimal:
        return (tokens["input_tokens"] * self.input + tokens["output_tokens"] * self.output
                + tokens["cache_read_tokens"] * self.cache_read
                + tokens["cache_write_tokens"] * self.cache_write) / MILLION


def model_prices() -> dict[str, Prices]:
    """Name, alias and upstream id -> prices, for catalog models with input and output prices.

    A missing cache price counts those tokens at the input price.
    """
    out: dict[str, Prices] = {}
    for m in Model.objects.filter(input_price__isnull=False, output_price__isnull=False):
        assert m.input_price is not None and m.output_price is not None
        prices = Prices(m.input_price, m.output_price, _or(m.cache_read_price, m.input_price),
                        _or(m.cache_write_price, m.input_price))
        for name in (m.name, m.upstream_model, *(m.aliases or [])):
            out.setdefault(str(name), prices)
    return out


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def to_csv(rows: list[dict[str, Any]], fields: Iterable[str] | None = None) -> str:
    """CSV text with a header line; ``fields`` defaults to the first row's keys."""
    names = list(fields) if fields is not None else (list(rows[0]) if rows else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    title: str


@dataclass(frozen=True)
class BarChart:
    """Geometry for an inline SVG bar chart (templates/accounts/_bar_chart.html draws it)."""
    width: int
    height: int
    bars: list[Bar]
    peak: int
    first_label: str
    last_label: str


def day_chart(days: list[dict[str, Any]], *, width: int = 720, height: int = 160) -> BarChart:
    """Bars of total tokens per day (input + cache + output), scaled to the busiest day."""
    values = [_tokens(d) for d in days]
    peak = max(values, default=0)
    slot = width / max(len(days), 1)
    gap = min(2.0, slot / 4)
    bars = []
    for i, (d, value) in enumerate(zip(days, values)):
        h = round(value / peak * (height - 1), 2) if peak else 0
        bars.append(Bar(x=round(i * slot + gap / 2, 2), y=round(height - h, 2), width=round(slot - gap, 2),
                        height=h, label=d["day"],
                        title=f"{d['day']}: {d['requests']} requests, {value} tokens"))
    return BarChart(width, height, bars, peak, days[0]["day"] if days else "", days[-1]["day"] if days else "")


def _grouped(qs: QuerySet[UsageRecord], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    if "day" in fields:
        qs = qs.annotate(day=TruncDate("created_at"))
    # Summed per model as well, so each part is priced with its own model's prices.
    per_model = tuple(f for f in ("upstream_model", "requested_model") if f not in fields)
    rows = (qs.values(*fields, *per_model).annotate(requests=Count("id"), **{f"sum_{t}": Sum(t) for t in TOTALS})
            .order_by(*fields))
    prices = model_prices() if rows else {}
    result: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[f] for f in fields)
        out = result.get(key)
        if out is None:
            out = {RENAMES.get(f, f): row[f] for f in fields}
            if "day" in fields:
                out["day"] = row["day"].isoformat() if row["day"] else None
            out.update({"requests": 0, **dict.fromkeys(TOTALS, 0), COST: None})
            result[key] = out
        tokens = {t: row[f"sum_{t}"] or 0 for t in TOTALS}
        out["requests"] += row["requests"]
        for t in TOTALS:
            out[t] += tokens[t]
        priced = prices.get(row["upstream_model"]) or prices.get(_base_name(row["requested_model"]))
        if priced is not None:
            out[COST] = (out[COST] or Decimal(0)) + priced.cost(tokens)
    for out in result.values():
        if out[COST] is not None:
            out[COST] = float(round(out[COST], 6))
    return list(result.values())


def _base_name(requested: str) -> str:
    """``gpt-5.5(high)`` -> ``gpt-5.5``: a thinking suffix is not part of the model's name."""
    return requested.split("(", 1)[0]


def _zero_day(day: date) -> dict[str, Any]:
    return {"day": day.isoformat(), "requests": 0, **dict.fromkeys(TOTALS, 0), COST: None}


def _tokens(row: dict[str, Any]) -> int:
    return sum(row[t] for t in TOTALS)
