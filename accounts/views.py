"""Self-service pages for a logged-in teammate: own keys, creating and revoking them, client configs.

Every lookup is filtered by ``user=request.user``, so another teammate's key id
is a 404, never a 403 that would confirm it exists. The raw key appears only in
the response to the POST that created it (never stored, never cached).
Usage pages read gateway records, so they live in gateway.usage.views
(accounts must not import gateway).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from accounts.client_configs import FORMATS
from accounts.forms import CreateKeyForm
from accounts.limit_usage import limit_lines
from accounts.models import ApiKey
from accounts.services import config_models

LOGIN_URL = "accounts:login"


@dataclass(frozen=True)
class ConfigFile:
    title: str
    filename: str
    content_type: str
    where: str


CONFIG_FILES = {
    "factory": ConfigFile("Factory Droid", "settings.json", "application/json", "~/.factory/settings.json"),
    "claude-code": ConfigFile("Claude Code", "proxyhub-claude-code.sh", "text/plain",
                              "paste into your shell (or ~/.bashrc)"),
    "codex": ConfigFile("Codex CLI", "config.toml", "application/toml", "~/.codex/config.toml"),
}


def base_url(request: HttpRequest) -> str:
    """PROXYHUB_PUBLIC_URL, else the address this page was reached at (the same server serves /v1)."""
    return settings.PROXYHUB_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def render_configs(request: HttpRequest, api_key: ApiKey, raw: str | None = None) -> list[dict[str, Any]]:
    """Each client config for ``api_key``, with ``raw`` filled in or the ${PROXYHUB_API_KEY} placeholder."""
    url, models = base_url(request), config_models(api_key)
    configs = []
    for fmt, file in CONFIG_FILES.items():
        text = FORMATS[fmt](url, models, raw)
        configs.append({
            "format": fmt, "file": file, "text": text,
            # With the raw key in it the file must not come from the server again: a data: URL.
            "download": (f"data:{file.content_type};charset=utf-8,{quote(text)}" if raw else
                         reverse("accounts:key_config", kwargs={"key_id": api_key.pk, "fmt": fmt})),
        })
    return configs


def config_download(request: HttpRequest, api_key: ApiKey, fmt: str) -> HttpResponse:
    """One config as an attachment (placeholder key); 404 for an unknown format or a revoked key."""
    if fmt not in CONFIG_FILES or api_key.revoked_at is not None:
        raise Http404
    file = CONFIG_FILES[fmt]
    response = HttpResponse(FORMATS[fmt](base_url(request), config_models(api_key), None),
                            content_type=f"{file.content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{file.filename}"'
    return response


@require_GET
@login_required(login_url=LOGIN_URL)
def key_list(request: HttpRequest) -> HttpResponse:
    keys = list(ApiKey.objects.filter(user=request.user).order_by("-created_at"))
    for key in keys:
        key.limit_lines = limit_lines(key)  # only this user's keys: no one else's figures
    return TemplateResponse(request, "accounts/key_list.html", {
        "keys": keys, "now": timezone.now(), "form": CreateKeyForm(request.user)})


@never_cache
@require_POST
@login_required(login_url=LOGIN_URL)
@sensitive_variables("raw")
def key_create(request: HttpRequest) -> HttpResponse:
    """Issue a key and answer with it right away: no redirect, so the raw key is never stored."""
    form = CreateKeyForm(request.user, request.POST)
    if not form.is_valid():
        keys = ApiKey.objects.filter(user=request.user).order_by("-created_at")
        return TemplateResponse(request, "accounts/key_list.html",
                                {"keys": keys, "now": timezone.now(), "form": form}, status=400)
    api_key, raw = form.issue()
    return TemplateResponse(request, "accounts/key_created.html", {
        "key": api_key, "raw": raw, "configs": render_configs(request, api_key, raw)})


@require_GET
@login_required(login_url=LOGIN_URL)
def key_detail(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    configs = render_configs(request, api_key) if api_key.revoked_at is None else []
    return TemplateResponse(request, "accounts/key_detail.html", {
        "key": api_key, "configs": configs, "now": timezone.now(), "limit_lines": limit_lines(api_key)})


@require_GET
@login_required(login_url=LOGIN_URL)
def key_config(request: HttpRequest, key_id: int, fmt: str) -> HttpResponse:
    return config_download(request, get_object_or_404(ApiKey, pk=key_id, user=request.user), fmt)


@require_POST
@login_required(login_url=LOGIN_URL)
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])  # save() so the gateway's key cache evicts it
        messages.success(request, f"Revoked {api_key.prefix}… ({api_key.name}).")
    return redirect("accounts:keys")


def admin_key_config(request: HttpRequest, object_id: str, fmt: str, *, model_admin: admin.ModelAdmin) -> HttpResponse:
    """The same download for staff, from the ApiKey change page (mounted by ApiKeyAdmin.get_urls())."""
    api_key = model_admin.get_object(request, object_id)
    if api_key is None or not model_admin.has_view_permission(request, api_key):
        raise Http404
    return config_download(request, api_key, fmt)
