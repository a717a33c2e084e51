"""Usage pages: a teammate's own usage (/me/usage/) and the staff report (/admin/usage/), each with CSV.

Thin views over gateway.usage.reports. They live in gateway, not accounts, because
they read UsageRecord and accounts must not import gateway (STYLE.md §2);
proxyhub/urls.py mounts them under the ``usage`` namespace, the staff pages
wrapped in admin_site.admin_view.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, AsyncIterator, Iterable, Iterator
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from accounts.models import ApiKey
from gateway.usage import conversations, metrics, overview, reports
from proxyhub.client_ip import client_ip

SELF_PERIOD = "30d"
DEFAULT_PERIOD = "7d"
CSV_LINES_PER_CHUNK = 500
CONVERSATION = "conversation"  # the staff report's grouping by conversation (its own rollup: whole UTC days)
MY_CONVERSATIONS = 20  # rows of /me/usage/'s conversation table
CSV_CONVERSATIONS = 1000  # rows of the staff report's conversation CSV


@require_GET
@login_required(login_url="accounts:login")
def my_usage(request: HttpRequest) -> HttpResponse:
    """The user's own usage over a range (``period`` or ``from``/``to``, 30 days by default): the staff
    Overview's charts, then per model and per day (or hour); ``?key=ID`` narrows to one own key."""
    api_key = _own_key(request)
    filters = _my_filters(request, api_key)
    # The charts' two rollup queries also give the tables: no third query for the same sums.
    data = overview.traffic(filters)
    order = _order(request)
    return TemplateResponse(request, "accounts/usage.html", {
        "conversations": conversations.conversations(filters.span, user=request.user, api_key=api_key,
                                                     order=order, limit=MY_CONVERSATIONS),
        "order": order, "order_query": {o: _my_query(filters, api_key, order=o) for o in conversations.ORDERS},
        "key": api_key, "keys": ApiKey.objects.filter(user=request.user).order_by("-created_at"),
        "days": [_row(b, day=b.label) for b in data.buckets], "total": _row(data.total),
        "models": [_row(m["b"], model=m["model"]) for m in data.models], "f": filters, "hourly": data.hourly,
        "charts": _my_charts(filters, data, api_key), "periods": list(reports.PERIODS),
        "since": filters.span.since, "until": filters.span.until, "csv_query": _my_query(filters, api_key),
    })


def _row(bucket: overview.Bucket, **label: str) -> dict[str, Any]:
    """A table row as the reports shape it: the label, requests, the four token sums and the cost."""
    cost = None if bucket.cost is None else float(round(bucket.cost, 6))
    return {**label, "requests": bucket.sums["requests"], **{k: bucket.sums[k] for k in reports.TOTALS},
            reports.COST: cost}


def _my_filters(request: HttpRequest, api_key: ApiKey | None) -> overview.Filters:
    """The range from the query string; the user (and key) from the session, whatever the query says."""
    query = {k: request.GET.get(k, "") for k in ("period", "from", "to")}
    if not query["period"] and not (query["from"] and query["to"]):
        query["period"] = SELF_PERIOD
    return replace(overview.parse_filters(query), user_id=request.user.pk,
                   key_id=api_key.pk if api_key else None)


def _my_query(filters: overview.Filters, api_key: ApiKey | None, **changes: Any) -> str:
    """This page's query string (range and key) with ``changes``: never a user, provider or outcome."""
    params = {k: v for k, v in filters.params().items() if k in ("period", "from", "to")}
    if api_key:
        params["key"] = str(api_key.pk)
    params.update({k: str(v) for k, v in changes.items()})
    return urlencode(params)


def _my_charts(filters: overview.Filters, data: overview.Traffic, api_key: ApiKey | None) -> list[overview.Chart]:
    """The Overview's charts of the user's rows; a bar opens its own day here (staff links would be refused)."""
    hrefs = [f"?{_my_query(filters, api_key, period='custom', **{'from': b.start.date(), 'to': b.start.date()})}"
             for b in data.buckets]
    return [replace(c, columns=[replace(col, href=href) for col, href in zip(c.columns, hrefs)])
            for c in overview.charts(filters, data)]


@require_GET
@login_required(login_url="accounts:login")
def my_usage_csv(request: HttpRequest) -> HttpResponse:
    """The page's range as CSV, one line per day and model."""
    api_key = _own_key(request)
    rows = reports.day_model_totals(_my_filters(request, api_key).span, user=request.user, api_key=api_key)
    fields = ["day", "model", "requests", *reports.TOTALS, reports.COST]
    return stream_csv(request, reports.csv_lines(rows, fields), "proxyhub-usage.csv")


@dataclass(frozen=True)
class ReportParams:
    """What the staff report shows: a group, a period (or custom dates), maybe one key."""

    by: str
    period: str
    span: reports.Range
    first: date | None = None  # custom range, both days included
    last: date | None = None
    api_key: ApiKey | None = None
    order: str = conversations.ORDERS[0]  # by conversation: newest or costliest first

    def query(self) -> str:
        """The query string that shows these parameters again (links, CSV)."""
        order = f"&order={self.order}" if self.by == CONVERSATION and self.order != conversations.ORDERS[0] else ""
        return f"by={self.by}&{self.rest()}{order}"

    def rest(self) -> str:
        """The query string without the group (the group links add their own)."""
        parts = [f"period={self.period}"]
        if self.first and self.last:
            parts += [f"from={self.first.isoformat()}", f"to={self.last.isoformat()}"]
        if self.api_key:
            parts.append(f"key={self.api_key.pk}")
        return "&".join(parts)

    def slug(self) -> str:
        return f"{self.first}-{self.last}" if self.first and self.last else self.period


class TableRow(list):  # type: ignore[type-arg]
    """A report table row's cells, with the row's cache hit rate beside them (not a cell: the cells'
    positions, totals last, are what the template and its tests read)."""

    hit_rate: float | None = None


def _table_row(row: dict[str, Any], cols: list[str]) -> TableRow:
    cells = TableRow(row[c] for c in cols)
    cells.hit_rate = reports.cache_hit_rate(row)
    return cells


@require_GET
def admin_usage(request: HttpRequest) -> HttpResponse:
    """Staff report: totals by key, user, model, day, credential or provider over a period or dates, or the
    top conversations (``by=conversation``, newest or costliest first) with their cache hit rates."""
    params = admin_params(request)
    by_conversation = params.by == CONVERSATION
    # By conversation, the chart and the total line are the period's (or the key's), from the rollups.
    usage = reports.report("day" if by_conversation else params.by, params.span, api_key=params.api_key)
    cols = reports.columns(params.by) if not by_conversation else []
    total = dict(usage.total, **{reports.HIT_RATE: reports.cache_hit_rate(usage.total)})
    return TemplateResponse(request, "accounts/admin_usage.html", {
        **admin.site.each_context(request), "title": "Usage", "params": params,
        "by": params.by, "period": params.period, "key": params.api_key,
        "groups": [*reports.GROUPS, CONVERSATION], "periods": list(reports.PERIODS), "first": params.first,
        "last": params.last, "columns": cols, "table": [_table_row(row, cols) for row in usage.rows],
        "cost_column": reports.COST, "total": total, "chart": reports.day_chart(usage.chart),
        "since": params.span.since, "until": params.span.until, "hourly": usage.hourly,
        "conversations": conversations.conversations(params.span, api_key=params.api_key, order=params.order)
        if by_conversation else None,
        "orders": conversations.ORDERS, "limit": conversations.LIMIT,
    })


@require_GET
def admin_usage_csv(request: HttpRequest) -> HttpResponse:
    """The report's table as CSV, streamed, with each row's cache hit rate; by conversation, up to
    CSV_CONVERSATIONS of them."""
    params = admin_params(request)
    if params.by == CONVERSATION:
        rows = conversations.conversations(params.span, api_key=params.api_key, order=params.order,
                                           limit=CSV_CONVERSATIONS)
        fields = list(conversations.COLUMNS)
    else:
        rows = reports.totals(params.by, params.span, api_key=params.api_key)
        fields = [*reports.columns(params.by), reports.HIT_RATE]
    return stream_csv(request, reports.csv_lines(rows, fields), f"proxyhub-usage-{params.by}-{params.slug()}.csv")


def stream_csv(request: HttpRequest, lines: Iterable[str], filename: str) -> StreamingHttpResponse:
    """A CSV download sent as it is produced, a few hundred lines per chunk.

    Under ASGI the chunks come through an async iterator (each produced in the
    sync thread, where a database cursor may live): Django would otherwise read
    a sync iterator to the end before sending a byte.
    """
    chunks = _chunked(iter(lines))
    content: Iterator[str] | AsyncIterator[str] = (
        _async_chunks(chunks) if isinstance(request, ASGIRequest) else chunks)
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _chunked(lines: Iterator[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= CSV_LINES_PER_CHUNK:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


async def _async_chunks(chunks: Iterator[str]) -> AsyncIterator[str]:
    take = sync_to_async(_next_chunk)
    while (chunk := await take(chunks)) is not None:
        yield chunk


def _next_chunk(chunks: Iterator[str]) -> str | None:
    return next(chunks, None)


def _own_key(request: HttpRequest) -> ApiKey | None:
    key_id = request.GET.get("key", "")
    if not key_id:
        return None
    return get_object_or_404(ApiKey, pk=key_id if key_id.isdigit() else 0, user=request.user)


def admin_params(request: HttpRequest) -> ReportParams:
    """The staff report's parameters from the query string; unknown values fall back to the defaults.

    ``from``/``to`` (YYYY-MM-DD, UTC days, both included) make a custom range. Raises
    PermissionDenied unless the user may view usage records.
    """
    if not request.user.has_perm("gateway.view_usagerecord"):
        raise PermissionDenied
    by = request.GET.get("by", "key")
    by = by if by in reports.GROUPS or by == CONVERSATION else "key"
    key_id = request.GET.get("key", "")
    api_key = get_object_or_404(ApiKey, pk=key_id) if key_id.isdigit() else None
    order = _order(request)
    first, last = _date(request.GET.get("from")), _date(request.GET.get("to"))
    if first and last:
        first, last = min(first, last), max(first, last)
        return ReportParams(by, "custom", reports.Range.of_dates(first, last), first, last, api_key, order)
    period = request.GET.get("period", DEFAULT_PERIOD)
    period = period if period in reports.PERIODS else DEFAULT_PERIOD
    return ReportParams(by, period, reports.period_range(period), api_key=api_key, order=order)


def _order(request: HttpRequest) -> str:
    """The conversation table's order from ``?order=``: "recent" (the default) or "cost"."""
    order = request.GET.get("order", "")
    return order if order in conversations.ORDERS else conversations.ORDERS[0]



def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.PROXYHUB_METRICS_TOKEN
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("Send PROXYHUB_METRICS_TOKEN as a bearer token.\n", status=401,
                                content_type="text/plain", headers={"www-authenticate": "Bearer"})
    elif client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"),
                   settings.PROXYHUB_TRUSTED_PROXIES) not in ("127.0.0.1", "::1"):  # a proxied caller is not local
        return HttpResponse("Metrics are served to loopback clients only; set PROXYHUB_METRICS_TOKEN to "
                            "scrape from elsewhere.\n", status=403, content_type="text/plain")
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
