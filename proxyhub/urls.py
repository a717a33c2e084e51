from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from gateway import report_views


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# Usage pages (gateway.report_views): a teammate's own, and the staff report behind admin_view.
usage_patterns = ([
    path("me/usage/", report_views.my_usage, name="mine"),
    path("me/usage/csv/", report_views.my_usage_csv, name="mine_csv"),
    path("admin/usage/", admin.site.admin_view(report_views.admin_usage), name="admin"),
    path("admin/usage/csv/", admin.site.admin_view(report_views.admin_usage_csv), name="admin_csv"),
], "usage")

urlpatterns = [
    path("", include(usage_patterns)),  # before admin/: its catch-all would claim admin/usage/
    path("admin/", admin.site.urls),
    path("me/", include("accounts.urls")),
    path("healthz", health, name="health"),
]
