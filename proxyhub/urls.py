from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, reverse
from django.views.generic import RedirectView

from gateway import doctor_views
from gateway.usage import overview_views
from gateway.usage import views as usage_views
from proxyhub.health import readyz


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# Usage pages (gateway.usage.views): a teammate's own, and the staff report behind admin_view.
usage_patterns = ([
    path("me/usage/", usage_views.my_usage, name="mine"),
    path("me/usage/csv/", usage_views.my_usage_csv, name="mine_csv"),
    path("admin/usage/", admin.site.admin_view(usage_views.admin_usage), name="admin"),
    path("admin/usage/csv/", admin.site.admin_view(usage_views.admin_usage_csv), name="admin_csv"),
    path("admin/overview/", admin.site.admin_view(overview_views.overview_page), name="overview"),
    path("admin/overview/csv/", admin.site.admin_view(overview_views.overview_csv), name="overview_csv"),
], "usage")


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's sign-in, landing on the Overview unless it was sent somewhere else than the admin index."""
    if request.GET.get(REDIRECT_FIELD_NAME, reverse("admin:index")) == reverse("admin:index"):
        request.GET = request.GET.copy()
        request.GET[REDIRECT_FIELD_NAME] = reverse("usage:overview")
    return admin.site.login(request)

# The Check button (gateway.doctor_views): a teammate's own key, and any key for staff.
doctor_patterns = ([
    path("me/keys/<int:key_id>/check/", doctor_views.my_key_check, name="mine"),
    path("admin/accounts/apikey/<int:key_id>/check/", admin.site.admin_view(doctor_views.admin_key_check),
         name="admin"),
], "doctor")

# The credentials and usage tables are wide; the app list is one click away on the index.
admin.site.enable_nav_sidebar = False
admin.site.site_header = "ProxyHub administration"
admin.site.site_title = "ProxyHub"

urlpatterns = [
    # The front door: teammates land on their keys (staff reach the admin from there or at /admin/).
    path("", RedirectView.as_view(url="/me/", permanent=False)),
    path("", include(usage_patterns)),  # before admin/: its catch-all would claim admin/usage/
    path("", include(doctor_patterns)),  # before admin/ too
    path("admin/login/", admin_login),  # before admin/: staff land on the Overview
    path("admin/", admin.site.urls),
    path("me/", include("accounts.urls")),
    path("healthz", health, name="health"),
    path("readyz", readyz, name="ready"),  # a load balancer's readiness probe
    # Claude Code probes ANTHROPIC_BASE_URL + /api/hello (HEAD) to warm its connection.
    path("api/hello", health, name="hello"),
    path("metrics", usage_views.metrics_view, name="metrics"),
]
