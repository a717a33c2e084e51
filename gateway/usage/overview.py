"""The staff Overview (/admin/overview/): pool health, traffic over time, top users, keys and models.

Everything here reads UsageRollup (never UsageRecord) in two aggregate
queries, whatever the range: one per (bucket, model, outcome) for the charts
and the model table, one per (key, user, model) for the user and key tables
(a key belongs to one user, so users are summed from keys). Filters
(range, provider, model, user, key, outcome) live in the query string, so a
view is a bookmarkable URL, and each chart bar and table row links to the
usage record list with the same filters.

Durations and times to first byte are shown as p50/p95 from small fixed-bucket
histograms kept in the rollups (gateway/usage/models.py DURATION_BOUNDS_MS), read
as bucket upper bounds, beside the averages from the sums.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from accounts.models import ApiKey
from credentials.models import Credential, Model, Provider
from credentials.window_state import FIVE_HOURS_MINUTES, WEEK_MINUTES, window_list
from gateway.usage import reports
from gateway.usage.amounts import compact_count, cost_text
from gateway.usage.models import (DURATION_BINS, DURATION_BOUNDS_MS, TTFB_BINS, TTFB_BOUNDS_MS, UsageRecord,
                                   UsageRollup)

SUMS = ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
        "duration_ms", "ttfb_ms", "ttfb_count", *DURATION_BINS, *TTFB_BINS)
# The user and key tables' sums: no outcome, no durations (see traffic()).
KEY_SUMS = ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
TOKEN_KINDS = (("input_tokens", "input"), ("cache_read_tokens", "cache read"),
               ("cache_write_tokens", "cache write"), ("output_tokens", "output"))
# "Errors" are what a lead acts on: upstream failures and the gateway's refusals. A cancelled
# request is the client's choice, so it is neither OK nor an error here.
ERRORS = (UsageRecord.Outcome.UPSTREAM_ERROR.value, UsageRecord.Outcome.REJECTED.value)
OUTCOME_SUMS = ("errors", "cancelled")
AGGREGATES = {"errors": Sum("requests", filter=Q(outcome__in=ERRORS)),
              "cancelled": Sum("requests", filter=Q(outcome=UsageRecord.Outcome.CLIENT_CANCELLED.value))}
OUTCOMES = {"ok": "OK", "error": "Errors (upstream or rejected)",
            **{o.value: str(o.label) for o in UsageRecord.Outcome if o.value != "ok"}}
TOP = 10
# A forecast needs the window to have run a while: a few minutes of a week say nothing about its rate.
FORECAST_MIN_ELAPSED = 0.05


# ---------------------------------------------------------------- filters

@dataclass(frozen=True)
class Filters:
    """The page's range and filters, read from and written back to the query string."""

    period: str
    span: reports.Range
    first: date | None = None
    last: date | None = None
    provider: str = ""
    model: str = ""
    user_id: int | None = None
    key_id: int | None = None
    outcome: str = ""

    def params(self, **changes: Any) -> dict[str, str]:
        """The non-empty query parameters, with ``changes`` applied (None drops one)."""
        out: dict[str, Any] = {"period": self.period}
        if self.first and self.last:
            out.update({"from": self.first.isoformat(), "to": self.last.isoformat()})
        out.update({"provider": self.provider, "model": self.model, "user": self.user_id or "",
                    "key": self.key_id or "", "outcome": self.outcome})
        out.update(changes)
        return {k: str(v) for k, v in out.items() if v not in (None, "")}

    def query(self, **changes: Any) -> str:
        return urlencode(self.params(**changes))

    def rollup_q(self) -> Q:
        """The rollup rows these filters select (besides the range)."""
        q = Q()
        if self.provider:
            q &= Q(provider=self.provider)
        if self.model:
            q &= Q(model=self.model)
        if self.user_id:
            q &= Q(user_id=self.user_id)
        if self.key_id:
            q &= Q(api_key_id=self.key_id)
        if self.outcome == "error":
            q &= Q(outcome__in=ERRORS)
        elif self.outcome:
            q &= Q(outcome=self.outcome)
        return q

    def records_url(self, since: datetime | None = None, until: datetime | None = None, **extra: Any) -> str:
        """The usage record list (gateway/admin.py UsageRecordAdmin) with these filters, over [since, until)."""
        since = since or self.span.since
        until = until or self.span.until
        params: dict[str, Any] = {}
        if since:
            params["created_at__gte"] = _stamp(since)
        if until:
            params["created_at__lt"] = _stamp(until)
        if self.provider:
            params["provider"] = self.provider
        if self.model:
            params["model"] = self.model
        if self.user_id:
            params["user"] = self.user_id
        if self.key_id:
            params["api_key"] = self.key_id
        outcome = extra.pop("outcome", self.outcome)
        if outcome == "error":
            params["outcome__in"] = ",".join(ERRORS)
        elif outcome:
            params["outcome__exact"] = outcome
        params.update({k: v for k, v in extra.items() if v not in (None, "")})
        return f"{reverse('admin:gateway_usagerecord_changelist')}?{urlencode(params)}"


def parse_filters(get: Mapping[str, str], now: datetime | None = None) -> Filters:
    """Filters from a query string; unknown or malformed values fall back to "all" (and the range to 7 days)."""
    first, last = _date(get.get("from")), _date(get.get("to"))
    provider = get.get("provider", "")
    provider = provider if provider in Provider.values else ""
    outcome = get.get("outcome", "")
    outcome = outcome if outcome in OUTCOMES else ""
    common = {"provider": provider, "model": get.get("model", "")[:100], "user_id": _int(get.get("user")),
              "key_id": _int(get.get("key")), "outcome": outcome}
    if first and last:
        first, last = min(first, last), max(first, last)
        return Filters("custom", reports.Range.of_dates(first, last), first, last, **common)
    period = get.get("period", "")
    period = period if period in reports.PERIODS else "7d"
    return Filters(period, reports.period_range(period, now), **common)


# ---------------------------------------------------------------- traffic

@dataclass
class Bucket:
    label: str
    start: datetime
    end: datetime
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*SUMS, *OUTCOME_SUMS), 0))
    cost: Decimal | None = None

    @property
    def errors(self) -> int:
        return self.sums["errors"]

    @property
    def cancelled(self) -> int:
        return self.sums["cancelled"]

    @property
    def tokens(self) -> int:
        return sum(self.sums[k] for k, _ in TOKEN_KINDS)

    @property
    def tokens_text(self) -> str:
        return compact_count(self.tokens)

    @property
    def requests_text(self) -> str:
        return f"{self.sums['requests']:,}"

    @property
    def cost_text(self) -> str:
        return cost_text(self.cost)

    @property
    def duration_text(self) -> str:
        return _ms(self.avg_duration)

    @property
    def ttfb_text(self) -> str:
        return _ms(self.avg_ttfb)

    def percentile(self, kind: str, q: float) -> float | None:
        """The ``q`` quantile of durations (``kind`` "duration") or first bytes ("ttfb"), in ms, as the upper
        bound of its histogram bucket (an over- rather than underestimate); the last bucket, longer than the
        last bound, reads as that bound. None without histogram counts (rollups older than the histograms).
        """
        bins, bounds = (DURATION_BINS, DURATION_BOUNDS_MS) if kind == "duration" else (TTFB_BINS, TTFB_BOUNDS_MS)
        counts = [self.sums[b] for b in bins]
        total = sum(counts)
        if not total:
            return None
        seen = 0
        for i, n in enumerate(counts):
            seen += n
            if seen >= q * total:
                return float(bounds[min(i, len(bounds) - 1)])
        return float(bounds[-1])

    def percentile_text(self, kind: str, q: float) -> str:
        value = self.percentile(kind, q)
        if value is None:
            return "—"
        bounds = DURATION_BOUNDS_MS if kind == "duration" else TTFB_BOUNDS_MS
        counts = [self.sums[b] for b in (DURATION_BINS if kind == "duration" else TTFB_BINS)]
        over = value == bounds[-1] and sum(counts[:-1]) < q * sum(counts)
        return f"> {_ms(value)}" if over else f"≤ {_ms(value)}"

    @property
    def latency_text(self) -> str:
        """The tile's line: p50 / p95 of duration and first byte, or the averages without histograms."""
        if self.percentile("duration", 0.5) is None:
            return f"average {_ms(self.avg_duration)}, first byte {_ms(self.avg_ttfb)} (no histogram yet)"
        return (f"p50 {self.percentile_text('duration', 0.5)}, p95 {self.percentile_text('duration', 0.95)}; "
                f"first byte p50 {self.percentile_text('ttfb', 0.5)}, p95 {self.percentile_text('ttfb', 0.95)}")

    @property
    def error_rate(self) -> float:
        return self.errors / self.sums["requests"] * 100 if self.sums["requests"] else 0.0

    @property
    def avg_duration(self) -> float:
        return self.sums["duration_ms"] / self.sums["requests"] if self.sums["requests"] else 0.0

    @property
    def avg_ttfb(self) -> float:
        return self.sums["ttfb_ms"] / self.sums["ttfb_count"] if self.sums["ttfb_count"] else 0.0


@dataclass
class Traffic:
    hourly: bool
    buckets: list[Bucket]
    total: Bucket
    models: list[dict[str, Any]]
    users: list[dict[str, Any]]
    keys: list[dict[str, Any]]


def traffic(filters: Filters, now: datetime | None = None) -> Traffic:
    """Per-bucket series and the top tables for ``filters``, from two queries over the rollups."""
    now = now or timezone.now()
    span = filters.span
    hourly = span.is_short(now)
    base = reports.rollups(span, hours_only=hourly).filter(filters.rollup_q())
    prices = reports.model_prices()
    buckets = _empty_buckets(span, hourly, now)
    by_label = {b.label: b for b in buckets}
    total = Bucket("total", span.since or (buckets[0].start if buckets else now), span.until or now)
    models: dict[str, Bucket] = {}
    with reports._hashing():
        # Outcomes as filtered sums, not a GROUP BY column: a fourth as many rows to fetch and add up.
        per_bucket = _sums(base, ("bucket", "model"), (*SUMS, *OUTCOME_SUMS))
        # Tokens only, no outcome: the columns of the rollups' covering index (usage_rollup_report),
        # so 90 days are read from the index alone (0.28 s -> 0.13 s on SQLite at a million records).
        per_key = _sums(base, ("api_key_id", "key_prefix", "user_id", "model"), KEY_SUMS)
    for row in per_bucket:
        bucket_at, model, sums = row[0], row[1], row[2:]
        label = _label(bucket_at, hourly)
        target = by_label.get(label)
        if target is None:  # an edge rollup outside the filled range (clock skew): still counted in totals
            target = by_label.setdefault(label, Bucket(label, bucket_at, bucket_at))
        model_row = models.setdefault(model, Bucket(model, total.start, total.end))
        for into in (target, total, model_row):
            _add(into, model, sums, prices, (*SUMS, *OUTCOME_SUMS))
    users: dict[int, Bucket] = {}
    keys: dict[tuple[int, str, int], Bucket] = {}
    for key_id, prefix, user_id, model, *sums in per_key:
        user_row = users.setdefault(user_id, Bucket(str(user_id), total.start, total.end))
        key_row = keys.setdefault((key_id, prefix, user_id), Bucket(prefix, total.start, total.end))
        _add(user_row, model, sums, prices, KEY_SUMS)
        _add(key_row, model, sums, prices, KEY_SUMS)
    model_rows = [{"model": name, "b": b, "overview": filters.query(model=name),
                   "records": filters.records_url(model=name)} for name, b in _top(models.items(), limit=50)]
    return Traffic(hourly, sorted(by_label.values(), key=lambda b: b.start), total, model_rows,
                   *_people(filters, users, keys))


def _people(filters: Filters, users: dict[int, Bucket],
            keys: dict[tuple[int, str, int], Bucket]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The top users' and keys' table rows, with names (two queries) and their links."""
    names = _usernames({u for u in users} | {k[2] for k in keys})
    key_names = _key_names({k[0] for k in keys})
    user_rows = [{"user_id": uid, "name": names.get(uid, "—" if not uid else f"deleted #{uid}"), "b": b,
                  "hit_rate": _hit_rate(b.sums),
                  "overview": filters.query(user=uid or None),
                  "records": filters.records_url(**({"user": uid} if uid else {"user__isnull": "True"}))}
                 for uid, b in _top(users.items())]
    key_rows = [{"key_id": kid, "prefix": prefix, "name": key_names.get(kid, ""),
                 "user": names.get(uid, ""), "b": b, "hit_rate": _hit_rate(b.sums),
                 "report": f"{reverse('usage:admin')}?{urlencode({'key': kid, **_report_range(filters)})}"
                 if kid in key_names else "",
                 "overview": filters.query(key=kid or None),
                 "records": filters.records_url(**({"api_key": kid} if kid else {"api_key__isnull": "True"}))}
                for (kid, prefix, uid), b in _top(keys.items())]
    return user_rows, key_rows


def _sums(qs: QuerySet[UsageRollup], columns: tuple[str, ...], sums: tuple[str, ...] = SUMS) -> list[tuple[Any, ...]]:
    named = {f"s_{f}": AGGREGATES.get(f) or Sum(f) for f in sums}
    return list(qs.values(*columns).annotate(**named).order_by().values_list(*columns, *named))


def _add(into: Bucket, model: str, sums: Iterable[Any], prices: dict[str, reports.Prices],
         names: tuple[str, ...]) -> None:
    """Adds one query row's ``sums`` (named by ``names``) to ``into``, and its cost at ``model``'s prices."""
    values = dict(zip(names, (v or 0 for v in sums)))
    target = into.sums
    for name, value in values.items():
        target[name] += value
    priced = prices.get(model)
    if priced is not None:
        into.cost = (into.cost or Decimal(0)) + priced.cost(values)


def _top(items: Iterable[tuple[Any, Bucket]], limit: int = TOP) -> list[tuple[Any, Bucket]]:
    return sorted(items, key=lambda kv: (-kv[1].tokens, -kv[1].sums["requests"], str(kv[0])))[:limit]


def _hit_rate(sums: Mapping[str, int]) -> float | None:
    rate = reports.cache_hit_rate(sums)
    return None if rate is None else rate * 100


def _report_range(filters: Filters) -> dict[str, str]:
    if filters.first and filters.last:
        return {"from": filters.first.isoformat(), "to": filters.last.isoformat()}
    return {"period": filters.period}


def _empty_buckets(span: reports.Range, hourly: bool, now: datetime) -> list[Bucket]:
    end = span.until or reports._ceil_hour(now)
    start = span.since or end - timedelta(days=30)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    at = start if hourly else reports._floor_day(start)
    out = []
    while at < end:
        out.append(Bucket(_label(at, hourly), max(at, start), min(at + step, end)))
        at += step
    return out


def _label(at: datetime, hourly: bool) -> str:
    return reports._hour_label(at) if hourly else reports._day_label(at)


def _usernames(ids: set[int]) -> dict[int, str]:
    ids = ids - {0}
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}


def _key_names(ids: set[int]) -> dict[int, str]:
    ids = ids - {0}
    return dict(ApiKey.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}


# ---------------------------------------------------------------- charts

@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str


@dataclass(frozen=True)
class Column:
    """One bucket: its bars, a hover title and the drill-down link."""

    rects: list[Rect]
    x: float
    width: float
    title: str
    href: str


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Geometry for templates/admin/overview/_chart.html: bars with axes, drawn in SVG on the server."""

    id: str
    title: str
    unit: str
    width: int
    height: int
    left: int
    bottom: float
    columns: list[Column]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    legend: list[tuple[str, str]]
    total: str

    def svg(self) -> SafeString:
        """The chart as inline SVG: built here rather than in a template, which took 0.17 s for 90 days' bars."""
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" role="img" '
               f'aria-label="{escape(self.title)} ({escape(self.unit)})">']
        for t in self.y_ticks:
            out.append(f'<line class="grid" x1="{self.left}" x2="{self.width}" y1="{t.pos}" y2="{t.pos}"/>'
                       f'<text class="ylab" x="{self.left - 4}" y="{t.pos}" dy="4">{escape(t.label)}</text>')
        for col in self.columns:
            rects = "".join(f'<rect class="{r.css}" x="{r.x}" y="{r.y}" width="{r.width}" height="{r.height}"/>'
                            for r in col.rects if r.height)
            out.append(f'<a href="{escape(col.href)}"><g class="col"><title>{escape(col.title)}</title>'
                       f'<rect class="hit" x="{col.x}" y="0" width="{col.width}" height="{self.bottom}"/>'
                       f'{rects}</g></a>')
        out.append(f'<line class="axis" x1="{self.left}" x2="{self.width}" y1="{self.bottom}" y2="{self.bottom}"/>')
        for t in self.x_ticks:
            out.append(f'<text class="xlab" x="{t.pos}" y="{self.height - 5}">{escape(t.label)}</text>')
        out.append("</svg>")
        return mark_safe("\n".join(out))  # every value above is a number or escaped


# viewBox units: about one unit per pixel in a half-width column at 1280 pixels, so 11-unit text reads as 11 px.
WIDTH, HEIGHT, LEFT, RIGHT, TOP_PAD, AXIS = 600, 180, 50, 6, 8, 20


def chart(chart_id: str, title: str, unit: str, buckets: list[Bucket], series: list[tuple[str, str, Any]],
          hrefs: list[str], fmt: Any, *, overlay: bool = False, total: str = "") -> Chart:
    """Stacked bars per bucket (``overlay``: each series drawn from the axis, narrower in turn).

    ``series`` is ``[(name, css class, value function of a Bucket)]``; ``fmt`` formats a value for
    the axis and the hover titles.
    """
    values = [[float(fn(b) or 0) for _, _, fn in series] for b in buckets]
    peak = max((max(v) if overlay else sum(v) for v in values), default=0.0)
    top = _nice(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP_PAD - AXIS
    bottom = TOP_PAD + plot_h
    slot = plot_w / max(len(buckets), 1)
    gap = min(2.0, slot / 5)
    columns = []
    for i, (bucket, vals) in enumerate(zip(buckets, values)):
        x = LEFT + i * slot
        rects, y = [], float(bottom)
        for n, ((name, css, _), value) in enumerate(zip(series, vals)):
            h = value / top * plot_h if top else 0.0
            if overlay:
                shrink = (slot - gap) * 0.3 * n
                rects.append(Rect(round(x + gap / 2 + shrink / 2, 2), round(bottom - h, 2),
                                  round(max(slot - gap - shrink, 0.5), 2), round(h, 2), css))
            else:
                y -= h
                rects.append(Rect(round(x + gap / 2, 2), round(y, 2), round(max(slot - gap, 0.5), 2), round(h, 2), css))
        lines = [f"{name}: {fmt(v)}" for (name, _, _), v in zip(series, vals)]
        hover = f"{bucket.label}{' UTC' if len(bucket.label) > 10 else ''}\n" + "\n".join(lines)
        columns.append(Column(rects, round(x, 2), round(slot, 2), hover, hrefs[i]))
    y_ticks = [Tick(round(bottom - plot_h * f, 2), fmt(top * f)) for f in (0, 0.25, 0.5, 0.75, 1)]
    every = max(1, -(-len(buckets) // 7))
    x_ticks = [Tick(round(LEFT + (i + 0.5) * slot, 2), _short(b.label)) for i, b in enumerate(buckets)
               if i % every == 0]
    return Chart(chart_id, title, unit, WIDTH, HEIGHT, LEFT, bottom, columns, y_ticks, x_ticks,
                 [(name, css) for name, css, _ in series], total)


def _nice(peak: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``peak`` (1 for nothing)."""
    if peak <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(peak))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= peak * (1 - 1e-9):
            return step * power
    return 10 * power


def _short(label: str) -> str:
    """An axis label: "Dec 04" for a day, "14:00" for an hour (with the day at midnight)."""
    if len(label) > 10:
        at = datetime.fromisoformat(label[:10])
        return f"{at:%b %d}" if label.endswith(" 00:00") else label[11:]
    return f"{date.fromisoformat(label):%b %d}"


def charts(filters: Filters, data: Traffic) -> list[Chart]:
    """The six traffic charts, each bar linking to its bucket's records."""
    b = data.buckets
    unit = "hour" if data.hourly else "day"
    ok_href = [filters.records_url(x.start, x.end) for x in b]
    err_href = [filters.records_url(x.start, x.end, outcome="error") for x in b]
    t = data.total
    return [
        chart("requests", f"Requests per {unit}", "requests", b,
              [("OK", "s-ok", lambda x: x.sums["requests"] - x.errors - x.cancelled),
               ("cancelled by the client", "s-cancel", lambda x: x.cancelled),
               ("errors", "s-err", lambda x: x.errors)], ok_href, compact_count,
              total=f"{t.sums['requests']:,} requests"),
        chart("tokens", f"Tokens per {unit}", "tokens", b,
              [(label, f"s-{n}", (lambda k: lambda x: x.sums[k])(k)) for n, (k, label) in enumerate(TOKEN_KINDS)],
              ok_href, compact_count, total=f"{compact_count(t.tokens)} tokens"),
        chart("cost", f"Estimated cost per {unit}", "USD", b, [("cost", "s-0", lambda x: x.cost or 0)],
              ok_href, cost_text, total=f"{cost_text(t.cost)} at list prices"),
        chart("errors", f"Error rate per {unit}", "%", b, [("error rate", "s-err", lambda x: x.error_rate)],
              err_href, lambda v: f"{v:.1f}%".replace(".0%", "%"),
              total=f"{t.errors:,} errors, {t.error_rate:.1f}%"),
        chart("duration", f"Duration per {unit}: p95, p50 and average", "ms, percentiles as bucket bounds", b,
              [("p95", "s-1", lambda x: x.percentile("duration", 0.95)),
               ("p50", "s-0", lambda x: x.percentile("duration", 0.5)),
               ("average", "s-3", lambda x: x.avg_duration)],
              ok_href, _ms, overlay=True,
              total=f"p50 {t.percentile_text('duration', 0.5)}, p95 {t.percentile_text('duration', 0.95)}"),
        chart("ttfb", f"Time to first byte per {unit}: p95, p50 and average", "ms, percentiles as bucket bounds", b,
              [("p95", "s-1", lambda x: x.percentile("ttfb", 0.95)),
               ("p50", "s-0", lambda x: x.percentile("ttfb", 0.5)),
               ("average", "s-3", lambda x: x.avg_ttfb)],
              ok_href, _ms, overlay=True,
              total=f"p50 {t.percentile_text('ttfb', 0.5)}, p95 {t.percentile_text('ttfb', 0.95)}"),
    ]


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


# ---------------------------------------------------------------- pool

@dataclass
class Gauge:
    name: str
    label: str
    used: float
    resets_at: datetime | None
    forecast: str


@dataclass
class Account:
    credential: Credential
    state: str  # ready, cooling, relogin, disabled
    state_text: str
    reconnect_url: str
    gauges: list[Gauge]


def window_minutes(name: str, entry: Mapping[str, Any]) -> float | None:
    """A window's length: 5h, 7d and model-scoped 7d_* by name, others from what the upstream said."""
    if name == "5h":
        return FIVE_HOURS_MINUTES
    if name == "7d" or name.startswith("7d_"):
        return WEEK_MINUTES
    minutes = entry.get("window_minutes")
    return float(minutes) if isinstance(minutes, (int, float)) and minutes > 0 else None


def forecast(used: float, resets_at: datetime | None, minutes: float | None, now: datetime) -> str:
    """When the window runs out at its average burn rate since it opened, or why there is no forecast.

    The rate is the used percent over the time since the window started (its reset minus its
    length): one number the upstream reports, no history needed, and honest about being an average.
    """
    if resets_at is None or minutes is None:
        return "no forecast: the reset time is unknown"
    if resets_at <= now:
        return "reset passed: refills on the next request"
    if used >= 100:
        return f"full until the reset, {_when(resets_at, now)}"
    elapsed = (now - (resets_at - timedelta(minutes=minutes))).total_seconds()
    if used <= 0 or elapsed < minutes * 60 * FORECAST_MIN_ELAPSED:
        return "no forecast yet: too little of the window has run"
    runs_out = now + timedelta(seconds=(100 - used) * elapsed / used)
    if runs_out >= resets_at:
        return "at this rate it lasts until the reset"
    return f"at this rate it runs out {_when(runs_out, now)}"


def _when(at: datetime, now: datetime) -> str:
    local = timezone.localtime(at)
    if local.date() == timezone.localtime(now).date():
        return f"today {local:%H:%M}"
    return f"{local:%a %b %d %H:%M}"


WINDOW_LABELS = {"5h": "5-hour", "7d": "weekly"}


def pool(now: datetime | None = None) -> list[tuple[str, list[Account]]]:
    """Every account, per provider, with its state, windows, gauges and forecasts (one query)."""
    now = now or timezone.now()
    out: dict[str, list[Account]] = {p.value: [] for p in Provider}
    for c in Credential.objects.defer("access_token", "refresh_token").order_by("provider", "label", "id"):
        if c.status == Credential.Status.DISABLED:
            state, text = "disabled", "disabled"
        elif c.status == Credential.Status.NEEDS_RELOGIN:
            state, text = "relogin", f"needs re-login{': ' + c.status_reason if c.status_reason else ''}"
        elif c.cooldown_until and c.cooldown_until > now:
            state, text = "cooling", f"cooling until {_when(c.cooldown_until, now)}"
        else:
            state, text = "ready", "ready"
        gauges = []
        for view in window_list(c.windows):
            entry = (c.windows or {})[view["name"]]
            resets = datetime.fromisoformat(view["resets_at"]) if view["resets_at"] else None
            name = view["name"]
            label = WINDOW_LABELS.get(name) or (f"weekly {name[3:]}" if name.startswith("7d_") else name)
            used = 0.0 if resets is not None and resets <= now else view["used_percent"]
            gauges.append(Gauge(name, label, min(used, 100.0), resets,
                                forecast(used, resets, window_minutes(name, entry), now)))
        reconnect = reverse("admin:credentials_connect_start", args=[c.provider]) if state == "relogin" else ""
        out.setdefault(c.provider, []).append(Account(c, state, text, reconnect, gauges))
    names = dict(Provider.choices)
    return [(names.get(p, p), accounts) for p, accounts in out.items()]


# ---------------------------------------------------------------- choices

def choices() -> dict[str, list[tuple[str, str]]]:
    """The filter form's options: providers, catalog models, users with keys, keys (three small queries)."""
    keys = list(ApiKey.objects.order_by("user__username", "name")
                .values_list("pk", "prefix", "name", "user_id", "user__username"))
    users = sorted({(str(uid), str(username)) for _, _, _, uid, username in keys if uid}, key=lambda u: u[1])
    return {
        "providers": [(str(v), str(label).split(" (")[0]) for v, label in Provider.choices],
        "models": [(m, m) for m in Model.objects.order_by("name").values_list("name", flat=True)],
        "users": users,
        "keys": [(str(pk), f"{prefix}… {name} ({username})") for pk, prefix, name, _, username in keys],
        "outcomes": list(OUTCOMES.items()),
    }


def _stamp(at: datetime) -> str:
    """UTC with its zone: the admin's lookups would read a bare time as naive (a warning, then an error)."""
    return at.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None
