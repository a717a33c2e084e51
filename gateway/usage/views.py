"""Usage pages: a teammate's own usage (/me/usage/) and the staff report (/admin/usage/), each with CSV.

Thin views over gateway.usage.reports. They live in gateway, not accounts, because
they read UsageRecord and accounts must not import gateway (STYLE.md §2);
proxyhub/urls.py mounts them under the ``usage`` namespace, the staff pages
wrapped in admin_site.admin_view.
"""
from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from accounts.models import ApiKey
from gateway.usage import metrics, reports

SELF_PERIOD = "30d"


@require_GET
@login_required(login_url="accounts:login")
def my_usage(request: HttpRequest) -> HttpResponse:
    """The last 30 days of the user's own usage, per day and per model; ``?key=ID`` narrows to one own key."""
    api_key = _own_key(request)
    since = reports.period_start(SELF_PERIOD)
    days = reports.daily_totals(since=since, user=request.user, api_key=api_key)
    return TemplateResponse(request, "accounts/usage.html", {
        "key": api_key, "keys": ApiKey.objects.filter(user=request.user).order_by("-created_at"),
        "days": days, "models": reports.totals("model", since=since, user=request.user, api_key=api_key),
        "total": reports.summed(days), "chart": reports.day_chart(days), "since": since,
    })


@require_GET
@login_required(login_url="accounts:login")
def my_usage_csv(request: HttpRequest) -> HttpResponse:
    """The same 30 days as CSV, one line per day and model."""
    api_key = _own_key(request)
    rows = reports.day_model_totals(since=reports.period_start(SELF_PERIOD), user=request.user, api_key=api_key)
    fields = ["day", "model", "requests", *reports.TOTALS, reports.COST]
    return _csv_response(reports.to_csv(rows, fields), "proxyhub-usage.csv")


@require_GET
def admin_usage(request: HttpRequest) -> HttpResponse:
    """Staff report: totals by key, user, model or day over 24 h / 7 d / 30 d, optionally for one key."""
    by, period, api_key = _admin_params(request)
    since = reports.period_start(period)
    rows = reports.totals(by, since=since, api_key=api_key)
    days = reports.daily_totals(since=since, api_key=api_key)
    cols = reports.columns(by)
    return TemplateResponse(request, "accounts/admin_usage.html", {
        **admin.site.each_context(request), "title": "Usage",
        "by": by, "period": period, "key": api_key, "groups": list(reports.GROUPS), "periods": list(reports.PERIODS),
        "columns": cols, "table": [[row[c] for c in cols] for row in rows], "cost_column": reports.COST,
        "total": reports.summed(rows), "chart": reports.day_chart(days), "since": since,
    })


@require_GET
def admin_usage_csv(request: HttpRequest) -> HttpResponse:
    by, period, api_key = _admin_params(request)
    rows = reports.totals(by, since=reports.period_start(period), api_key=api_key)
    return _csv_response(reports.to_csv(rows, reports.columns(by)), f"proxyhub-usage-{by}-{period}.csv")


def _own_key(request: HttpRequest) -> ApiKey | None:
    key_id = request.GET.get("key", "")
    if not key_id:
        return None
    return get_object_or_404(ApiKey, pk=key_id if key_id.isdigit() else 0, user=request.user)


def _admin_params(request: HttpRequest) -> tuple[str, str, ApiKey | None]:
    """(group, period, key) from the query string; unknown values fall back to the defaults."""
    if not request.user.has_perm("gateway.view_usagerecord"):
        raise PermissionDenied
    by = request.GET.get("by", "key")
    period = request.GET.get("period", "7d")
    key_id = request.GET.get("key", "")
    api_key = get_object_or_404(ApiKey, pk=key_id) if key_id.isdigit() else None
    return (by if by in reports.GROUPS else "key"), (period if period in reports.PERIODS else "7d"), api_key


def _csv_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.PROXYHUB_METRICS_TOKEN
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("Send PROXYHUB_METRICS_TOKEN as a bearer token.\n", status=401,
                                content_type="text/plain", headers={"www-authenticate": "Bearer"})
    elif request.META.get("REMOTE_ADDR") not in ("127.0.0.1", "::1"):
        return HttpResponse("Metrics are served to loopback clients only; set PROXYHUB_METRICS_TOKEN to "
                            "scrape from elsewhere.\n", status=403, content_type="text/plain")
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
