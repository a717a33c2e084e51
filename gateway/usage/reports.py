"""Usage totals grouped by key, user, model, day, credential or provider, plus the pages' chart and CSV.

Every report reads UsageRollup, never UsageRecord: a range is cut into whole
UTC days (day rollups) and the hours at its ends (hour rollups), so any
hour-aligned range is exact and a 90-day report sums about a hundred
thousand rollup rows instead of a million records (issue 7). The pages and
the usage_report command call these functions and never loop over records.

Each row also carries an estimated cost: its tokens priced per model with the
list prices an admin keeps in the model catalog (None when none of the row's
models has prices). Rollups are summed per (group, model) in SQL and priced
here; a ``model(level)`` name is rolled up with its model, so it is priced
and grouped as that model.
"""
from __future__ import annotations

import csv
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any, Iterable, Iterator

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import ApiKey
from credentials.models import Credential, Model
from gateway.usage.models import UsageRollup

# Report group -> the rollup columns it groups by, and the columns it shows.
GROUPS: dict[str, tuple[str, ...]] = {
    "key": ("api_key_id", "key_prefix", "user_id"),
    "user": ("user_id",),
    "model": ("model",),
    "day": ("bucket",),
    "credential": ("credential_id",),
    "provider": ("provider",),
}
SHOWN: dict[str, tuple[str, ...]] = {
    "key": ("key_prefix", "key_name", "user"),
    "user": ("user",),
    "model": ("model",),
    "day": ("day",),
    "credential": ("credential",),
    "provider": ("provider",),
}
TOTALS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
SUMS = ("requests", *TOTALS)
COST = "estimated_cost_usd"
HIT_RATE = "cache_hit_rate"  # totals() rows: cache reads / the whole prompt
MILLION = Decimal(1_000_000)
# The report pages' periods, in the order they are offered.
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
           "90d": timedelta(days=90)}
UTC = dt_timezone.utc


@dataclass(frozen=True)
class Range:
    """[since, until) on hour boundaries; None is open (all time before, or up to now)."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, since: datetime | None = None, until: datetime | None = None) -> Range:
        """The hour-aligned range covering [since, until): since floored, until rounded up to the hour."""
        return cls(_floor_hour(since) if since else None, _ceil_hour(until) if until else None)

    @classmethod
    def of_dates(cls, first: date, last: date) -> Range:
        """Whole UTC days ``first`` to ``last``, both included."""
        return cls(_midnight(first), _midnight(last + timedelta(days=1)))

    def is_short(self, now: datetime | None = None) -> bool:
        """Two days or less: charted per hour instead of per day."""
        end = self.until or _ceil_hour(now or timezone.now())
        return self.since is not None and end - self.since <= timedelta(days=2)

    def rollup_filter(self) -> Q:
        """Rollups that make up the range, each request counted once: whole days, then the edge hours."""
        whole_from = _ceil_day(self.since) if self.since else None
        whole_to = _floor_day(self.until) if self.until else None
        if whole_from and whole_to and whole_from >= whole_to:
            return _hours(self.since, self.until)
        days = Q(span=UsageRollup.Span.DAY)
        if whole_from:
            days &= Q(bucket__gte=whole_from)
        if whole_to:
            days &= Q(bucket__lt=whole_to)
        if self.since and whole_from and self.since < whole_from:
            days |= _hours(self.since, whole_from)
        if self.until and whole_to and whole_to < self.until:
            days |= _hours(whole_to, self.until)
        return days

    def record_filter(self) -> Q:
        """The same range over UsageRecord.created_at (raw exports and checks)."""
        q = Q()
        if self.since:
            q &= Q(created_at__gte=self.since)
        if self.until:
            q &= Q(created_at__lt=self.until)
        return q


def period_start(period: str, now: datetime | None = None) -> datetime:
    """Where a PERIODS entry starts: "24h" is this hour and the 23 before; "7d" is today and the six days before."""
    now = now or timezone.now()
    span = PERIODS[period]
    if period.endswith("h"):
        return _floor_hour(now) - span + timedelta(hours=1)
    return _midnight(now.astimezone(UTC).date() - timedelta(days=span.days - 1))


def period_range(period: str, now: datetime | None = None) -> Range:
    """A PERIODS entry as a Range up to now."""
    return Range(period_start(period, now))


def columns(by: str) -> list[str]:
    """The keys of a totals(by) row, in order (also the CSV header)."""
    return [*SHOWN[by], "requests", *TOTALS, COST]


@dataclass(frozen=True)
class Report:
    """A usage page's numbers: the table (one row per group), the chart's bars and the total line."""

    rows: list[dict[str, Any]]
    chart: list[dict[str, Any]]  # one per day, or per hour ("day" is then "YYYY-MM-DD HH:00")
    total: dict[str, Any]
    hourly: bool


def report(by: str, span: Range, *, user: AbstractBaseUser | None = None, api_key: ApiKey | None = None,
           hourly: bool | None = None) -> Report:
    """The table grouped ``by`` (a GROUPS key) and the chart of ``span``, from one or two queries over the rollups.

    The chart is per hour for a short range (Range.is_short) unless ``hourly`` says otherwise.
    """
    hourly = span.is_short() if hourly is None else hourly
    qs = rollups(span, user=user, api_key=api_key, hours_only=hourly)
    with _hashing():
        if by in ("day", "model"):
            per_bucket, per_group = _sums(qs, ("bucket", "model")), []
        elif connection.vendor == "postgresql":
            per_bucket, per_group = _both_sums(qs, GROUPS[by])
        else:
            per_bucket, per_group = _sums(qs, ("bucket", "model")), _sums(qs, (*GROUPS[by], "model"))
    prices = model_prices() if per_bucket else {}
    label = _hour_label if hourly else _day_label
    bars: dict[tuple[Any, ...], list[int]] = {}
    for bucket, model, *sums in per_bucket:
        _add(bars, (label(bucket), model), sums)
    chart = _filled(_priced(bars, ("day",), prices), span, hourly)
    if by in ("day", "model"):
        # The chart's query already holds these groups: no second scan.
        data = [(_day_label(bucket) if by == "day" else model, model, *sums) for bucket, model, *sums in per_bucket]
        rows = _priced(_table(data), SHOWN[by], prices)
    else:
        rows = _named(by, _priced(_table(per_group), GROUPS[by], prices))
    return Report(rows, chart, summed(rows), hourly)


def rollups(span: Range, *, user: AbstractBaseUser | None = None, api_key: ApiKey | None = None,
            hours_only: bool = False) -> QuerySet[UsageRollup]:
    """The rollups of ``span``, narrowed to one user and/or one key when given; hour rollups only if asked."""
    qs = UsageRollup.objects.filter(_hours(span.since, span.until) if hours_only else span.rollup_filter())
    if user is not None:
        qs = qs.filter(user_id=user.pk)
    if api_key is not None:
        qs = qs.filter(api_key_id=api_key.pk)
    return qs


def totals(by: str, span: Range | None = None, *, user: AbstractBaseUser | None = None,
           api_key: ApiKey | None = None) -> list[dict[str, Any]]:
    """Totals per group (``by`` is a GROUPS key; KeyError otherwise) over ``span`` (default: all time)."""
    fields = GROUPS[by]
    with _hashing():
        data = _sums(rollups(span or Range(), user=user, api_key=api_key), (*fields, "model"))
    if by == "day":
        data = [(_day_label(bucket), *rest) for bucket, *rest in data]
    rows = _named(by, _priced(_table(data), SHOWN[by] if by == "day" else fields, model_prices() if data else {}))
    for row in rows:  # after _named, which may merge rows: a rate is not summed, it is computed from the sums
        row[HIT_RATE] = cache_hit_rate(row)
    return rows


def day_model_totals(span: Range, *, user: AbstractBaseUser | None = None,
                     api_key: ApiKey | None = None) -> list[dict[str, Any]]:
    """One dict per (day, model), oldest day first: the self-service CSV export."""
    data = _sums(rollups(span, user=user, api_key=api_key), ("bucket", "model"))
    table: dict[tuple[Any, ...], list[int]] = {}
    for bucket, model, *sums in data:
        _add(table, (_day_label(bucket), model, model), sums)
    return _priced(table, ("day", "model"), model_prices() if data else {})


def daily_totals(*, since: datetime, user: AbstractBaseUser | None = None, api_key: ApiKey | None = None,
                 until: datetime | None = None) -> list[dict[str, Any]]:
    """One dict per UTC day from ``since`` to ``until`` (default now), days without usage as zeros."""
    return report("day", Range.of(since, until), user=user, api_key=api_key, hourly=False).chart


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


def cache_hit_rate(row: dict[str, Any]) -> float | None:
    """The share of the prompt read from a cache: cache_read / (input + cache_read + cache_write).

    One meaning for both providers: ``input_tokens`` is the uncached part everywhere (a Codex
    row's cached tokens are its cache reads). None when the rows hold no input at all.
    """
    prompt = row["input_tokens"] + row["cache_read_tokens"] + row["cache_write_tokens"]
    return round(row["cache_read_tokens"] / prompt, 4) if prompt else None


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


class _Line:
    """A file-like object whose write() returns the line: csv.writer then yields text, not a buffer."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[dict[str, Any]] | Iterable[tuple[Any, ...]], fields: Iterable[str]) -> Iterator[str]:
    """CSV text one line at a time, header first: dict rows are read by ``fields``, tuples as they are."""
    names = list(fields)
    writer = csv.writer(_Line(), lineterminator="\n")
    yield writer.writerow(names)
    for row in rows:
        values = [row.get(f) for f in names] if isinstance(row, dict) else row
        yield writer.writerow(["" if v is None else v for v in values])


def to_csv(rows: list[dict[str, Any]], fields: Iterable[str] | None = None) -> str:
    """CSV text with a header line; ``fields`` defaults to the first row's keys."""
    names = list(fields) if fields is not None else (list(rows[0]) if rows else [])
    return "".join(csv_lines(rows, names))


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
    """Bars of total tokens per day or hour (input + cache + output), scaled to the busiest one."""
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


def _sums(qs: QuerySet[UsageRollup], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """(*columns, *SUMS) per distinct ``columns``: the one aggregate query behind every report."""
    named = {f"sum_{f}": Sum(f) for f in SUMS}
    return list(qs.values(*columns).annotate(**named).order_by().values_list(*columns, *named))


def _both_sums(qs: QuerySet[UsageRollup], group: tuple[str, ...]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Postgres: _sums(qs, (bucket, model)) and _sums(qs, (*group, model)) from one scan (GROUPING SETS).

    A 90-day report by key read its 114,000 daily rollups twice, 0.11 s each.
    """
    names = ("bucket", "model", *group)
    inner, params = qs.order_by().values_list(*names, *SUMS).query.sql_with_params()
    sums = ", ".join(f"SUM(r.{f})" for f in SUMS)
    sql = (f"SELECT GROUPING(r.bucket), {', '.join(f'r.{n}' for n in names)}, {sums} FROM ({inner}) r "
           f"GROUP BY GROUPING SETS ((r.bucket, r.model), ({', '.join(f'r.{n}' for n in group)}, r.model))")
    per_bucket, per_group = [], []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for by_group, bucket, model, *rest in cursor.fetchall():
            values = rest[len(group):]
            if by_group:
                per_group.append((*rest[:len(group)], model, *values))
            else:
                per_bucket.append((bucket, model, *values))
    return per_bucket, per_group


@contextmanager
def _hashing() -> Iterator[None]:
    """On Postgres, a transaction whose aggregates may hash in memory.

    Postgres guesses tens of thousands of groups where there are hundreds, and
    with the default 4 MB work_mem sorts 100,000 rollups on disk instead of
    hashing them: 0.37 s -> 0.12 s for a 90-day report by key.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")
        yield


def _table(data: Iterable[tuple[Any, ...]]) -> dict[tuple[Any, ...], list[int]]:
    """{(*group, model): SUMS} from rows of (*group, model, *SUMS), summing rows with the same key."""
    table: dict[tuple[Any, ...], list[int]] = {}
    for row in data:
        _add(table, row[:-len(SUMS)], row[-len(SUMS):])
    return table


def _add(into: dict[tuple[Any, ...], list[int]], key: tuple[Any, ...], sums: Iterable[Any]) -> None:
    total = into.get(key)
    if total is None:
        into[key] = [v or 0 for v in sums]
    else:
        for i, v in enumerate(sums):
            total[i] += v or 0


def _priced(table: dict[tuple[Any, ...], list[int]], names: tuple[str, ...],
            prices: dict[str, Prices]) -> list[dict[str, Any]]:
    """Rows from {(*group, model): SUMS}: summed per group, each model's part priced, sorted by group."""
    result: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, sums in table.items():
        group, model = key[:-1], key[-1]
        out = result.get(group)
        if out is None:
            out = result[group] = {**dict(zip(names, group)), **dict.fromkeys(SUMS, 0), COST: None}
        for name, value in zip(SUMS, sums):
            out[name] += value
        priced = prices.get(model)
        if priced is not None:
            out[COST] = (out[COST] or Decimal(0)) + priced.cost(dict(zip(SUMS, sums)))
    for out in result.values():
        if out[COST] is not None:
            out[COST] = float(round(out[COST], 6))
    return [result[k] for k in sorted(result, key=lambda k: tuple(_sortable(v) for v in k))]


def _filled(rows: list[dict[str, Any]], span: Range, hourly: bool) -> list[dict[str, Any]]:
    """Chart rows for every day (or hour) of ``span``, zeros where nothing was used."""
    by_label = {r["day"]: r for r in rows}
    end = span.until or _ceil_hour(timezone.now())
    start = span.since or (_floor_day(_parse_label(min(by_label))) if by_label else _floor_day(end))
    if hourly:
        labels = [_hour_label(start + timedelta(hours=n)) for n in range(int((end - start).total_seconds() // 3600))]
    else:
        first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
        labels = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    return [by_label.get(label) or _zero("day", label) for label in labels]


def _parse_label(label: str) -> datetime:
    return datetime.fromisoformat(label[:10]).replace(tzinfo=UTC)


def _named(by: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose ids are replaced by names (one query per kind of id), in SHOWN[by] order."""
    users: dict[int, str] = {}
    if by in ("key", "user"):
        ids = {r["user_id"] for r in rows} - {0}
        users = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}
    if by == "key":
        ids = {r["api_key_id"] for r in rows} - {0}
        names = dict(ApiKey.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
        out = [{"key_prefix": r["key_prefix"], "key_name": names.get(r["api_key_id"], ""),
                "user": users.get(r["user_id"]), **_numbers(r)} for r in rows]
        return _merged(out, SHOWN["key"])
    if by == "user":
        return _merged([{"user": users.get(r["user_id"]), **_numbers(r)} for r in rows], SHOWN["user"])
    if by == "credential":
        ids = {r["credential_id"] for r in rows} - {0}
        accounts = Credential.objects.filter(pk__in=ids).only("provider", "label", "email", "account_id")
        labels = {c.pk: str(c) for c in accounts} if ids else {}
        return _merged([{"credential": labels.get(r["credential_id"], f"deleted #{r['credential_id']}")
                         if r["credential_id"] else None, **_numbers(r)} for r in rows], SHOWN["credential"])
    return rows


def _merged(rows: list[dict[str, Any]], shown: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows with the same shown values (two deleted keys' users, say) summed into one, sorted."""
    result: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[f] for f in shown)
        out = result.get(key)
        if out is None:
            result[key] = dict(row)
            continue
        for f in ("requests", *TOTALS):
            out[f] += row[f]
        if row[COST] is not None:
            out[COST] = round((out[COST] or 0) + row[COST], 6)
    return sorted(result.values(), key=lambda r: tuple(_sortable(r[f]) for f in shown))


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    return {f: row[f] for f in ("requests", *TOTALS, COST)}


def _sortable(value: Any) -> tuple[bool, Any]:
    return (value is not None, value if value is not None else 0)


def _zero(label_field: str, label: str) -> dict[str, Any]:
    return {label_field: label, "requests": 0, **dict.fromkeys(TOTALS, 0), COST: None}


def _tokens(row: dict[str, Any]) -> int:
    return sum(row[t] for t in TOTALS)


def _hours(since: datetime | None, until: datetime | None) -> Q:
    q = Q(span=UsageRollup.Span.HOUR)
    if since:
        q &= Q(bucket__gte=since)
    if until:
        q &= Q(bucket__lt=until)
    return q


def _day_label(at: datetime) -> str:
    return at.astimezone(UTC).date().isoformat()


def _hour_label(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:00")


def _floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(at: datetime) -> datetime:
    floor = _floor_hour(at)
    return floor if floor == at else floor + timedelta(hours=1)


def _floor_day(at: datetime) -> datetime:
    return _floor_hour(at).replace(hour=0)


def _ceil_day(at: datetime) -> datetime:
    floor = _floor_day(at)
    return floor if floor == at else floor + timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
