"""The Check button: a teammate's own key on /me/, any key for staff in the admin.

The raw key is needed (only its hash is stored): the page a key was issued on posts it in a hidden
field, and for an older key the user pastes it. It is compared with the key's hash, used for the
check requests and dropped: never stored, logged or echoed back. With ``X-Requested-With: fetch``
the answer is only the results table, which accounts/static/accounts/copy.js puts into the page.
Lives in gateway because accounts may not import it.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.models import ApiKey
from accounts.services import config_models
from accounts.views import base_url
from gateway import doctor

FRAGMENT_HEADER = "X-Requested-With"


def _check(request: HttpRequest, api_key: ApiKey, context: dict[str, Any]) -> HttpResponse:
    # The address the page's configs name (PROXYHUB_PUBLIC_URL, else this page's): the one clients use.
    context.update(key=api_key, base_url=base_url(request), results=None, error="", check_url=request.path)
    if request.method == "POST":
        raw = request.POST.get("key", "").strip()
        if api_key.revoked_at is not None:
            context["error"] = "This key is revoked: there is nothing to check."
        elif not doctor.key_matches(api_key, raw):
            context["error"] = (f"That is not the key {api_key.prefix}…: paste the whole key, "
                                f"as your client sends it.")
        else:
            models = config_models(api_key)
            context["results"] = doctor.check_key(context["base_url"], raw, models)
            if not models:
                context["error"] = "This key may use no enabled model: nothing to check."
    fragment = request.headers.get(FRAGMENT_HEADER) == "fetch"
    template = "accounts/_check_results.html" if fragment else "accounts/key_check.html"
    return TemplateResponse(request, template, context, status=400 if context["error"] and fragment else 200)


@never_cache
@sensitive_post_parameters("key")
@require_http_methods(["GET", "POST"])
@login_required(login_url="accounts:login")
def my_key_check(request: HttpRequest, key_id: int) -> HttpResponse:
    """Check one of the signed-in user's own keys (another user's key id is a 404)."""
    api_key = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    return _check(request, api_key, {
        "base_template": "accounts/base.html",
        "back_url": reverse("accounts:key_detail", kwargs={"key_id": api_key.pk}), "admin": False})


@sensitive_post_parameters("key")
@require_http_methods(["GET", "POST"])
def admin_key_check(request: HttpRequest, key_id: int) -> HttpResponse:
    """Check any key, for staff who may view keys (mounted behind admin_view by proxyhub/urls.py)."""
    if not request.user.has_perm("accounts.view_apikey"):
        raise Http404
    api_key = get_object_or_404(ApiKey, pk=key_id)
    return _check(request, api_key, {
        "base_template": "admin/base_site.html",
        "back_url": reverse("admin:accounts_apikey_change", args=[api_key.pk]), "admin": True})
