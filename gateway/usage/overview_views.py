"""/admin/overview/ (the staff Overview) and its CSV: thin views over gateway.usage.overview.

Mounted behind admin_site.admin_view in proxyhub/urls.py; the page is what staff
land on after signing in to the admin (proxyhub/urls.py admin_login).
"""
from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from gateway.usage import overview, reports
from gateway.usage.amounts import cost_text
from gateway.usage.views import stream_csv

CSV_FIELDS = ("bucket", "requests", "errors", "cancelled", "input_tokens", "cache_read_tokens",
              "cache_write_tokens", "output_tokens", "estimated_cost_usd", "avg_duration_ms", "avg_ttfb_ms")


@require_GET
def overview_page(request: HttpRequest) -> HttpResponse:
    """Pool health, traffic charts and the top users, keys and models for the range and filters in the URL."""
    if not request.user.has_perm("gateway.view_usagerecord"):
        raise PermissionDenied
    now = timezone.now()
    filters = overview.parse_filters(request.GET, now)
    data = overview.traffic(filters, now)
    pool = overview.pool(now) if request.user.has_perm("credentials.view_credential") else None
    return TemplateResponse(request, "admin/overview.html", {
        **admin.site.each_context(request), "title": "Overview", "f": filters, "data": data,
        "charts": overview.charts(filters, data), "pool": pool, "choices": overview.choices(),
        "periods": list(reports.PERIODS), "now": now, "total": data.total,
        "total_cost": cost_text(data.total.cost), "records_url": filters.records_url(),
        "errors_url": filters.records_url(outcome="error"), "csv_query": filters.query(),
        "hit_rate": overview._hit_rate(data.total.sums),
    })


@require_GET
def overview_csv(request: HttpRequest) -> HttpResponse:
    """The charts' numbers, one line per hour or day, for the same range and filters."""
    if not request.user.has_perm("gateway.view_usagerecord"):
        raise PermissionDenied
    filters = overview.parse_filters(request.GET)
    data = overview.traffic(filters)
    rows = ((b.label, b.sums["requests"], b.errors, b.cancelled, b.sums["input_tokens"], b.sums["cache_read_tokens"],
             b.sums["cache_write_tokens"], b.sums["output_tokens"],
             "" if b.cost is None else round(float(b.cost), 6), round(b.avg_duration), round(b.avg_ttfb))
            for b in data.buckets)
    slug = f"{filters.first}-{filters.last}" if filters.first else filters.period
    return stream_csv(request, reports.csv_lines(rows, CSV_FIELDS), f"proxyhub-overview-{slug}.csv")
