"""Admin pages for connecting accounts: the OAuth paste wizard and token-file upload.

Thin views over credentials.connect. They are mounted inside the admin site by
CredentialAdmin.get_urls() (see credentials.urls), wrapped in admin_view, so
only logged-in staff reach them; each also needs the "add credential" permission.
Nothing here ever renders a token or echoes what was pasted or uploaded.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from credentials import connect
from credentials.forms import PasteForm, UploadForm
from credentials.importers import ImportFormatError
from credentials.models import PendingLogin


def _require_add_permission(request: HttpRequest, model_admin: admin.ModelAdmin) -> None:
    if not model_admin.has_add_permission(request):
        raise PermissionDenied


def _context(request: HttpRequest, model_admin: admin.ModelAdmin, title: str, **extra: Any) -> dict[str, Any]:
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta,
            "title": title, "flows": connect.FLOWS.values(), **extra}


def _changelist_url() -> str:
    return reverse("admin:credentials_credential_changelist")


@require_GET
def connect_start(request: HttpRequest, provider: str, *, model_admin: admin.ModelAdmin) -> HttpResponse:
    """Start a login and go to its page. A GET, so the changelist buttons can be plain links;
    the only write is a short-lived PendingLogin row."""
    _require_add_permission(request, model_admin)
    if provider not in connect.FLOWS:
        messages.error(request, f"Unknown provider {provider!r}.")
        return HttpResponseRedirect(_changelist_url())
    pending = connect.start(provider, user=request.user)
    return redirect("admin:credentials_connect", pending_id=pending.pk)


@sensitive_post_parameters("pasted")
@require_http_methods(["GET", "POST"])
@sensitive_variables("pasted")
def connect_paste(request: HttpRequest, pending_id: UUID, *, model_admin: admin.ModelAdmin) -> HttpResponse:
    """Step 1 shows the authorize URL and the paste form; the POST finishes the login."""
    _require_add_permission(request, model_admin)
    try:
        pending = connect.pending_login(pending_id, user=request.user)
    except connect.LoginExpiredError as exc:
        return _expired(request, model_admin, exc)
    provider_flow = connect.FLOWS[pending.provider]
    form = PasteForm(request.POST or None, paste_label=provider_flow.paste_label)
    error = ""
    if request.method == "POST" and form.is_valid():
        pasted = form.cleaned_data["pasted"]
        try:
            result = connect.finish(pending.pk, pasted, label=form.cleaned_data["label"], user=request.user)
        except connect.LoginExpiredError as exc:
            return _expired(request, model_admin, exc)
        except connect.ConnectError as exc:
            error = exc.message
        else:
            verb = "Connected" if result.created else "Updated"
            messages.success(request, f"{verb} {connect.describe(result.credential)}.")
            return HttpResponseRedirect(_changelist_url())
    return TemplateResponse(request, "credentials/connect.html", _context(
        request, model_admin, f"Connect {provider_flow.name} account",
        flow=provider_flow, pending=pending, authorize_url=connect.authorize_url(pending), form=form, error=error,
        minutes=int(PendingLogin.LIFETIME.total_seconds() // 60),
    ))


def _expired(request: HttpRequest, model_admin: admin.ModelAdmin, exc: connect.ConnectError) -> HttpResponse:
    provider_flow = connect.FLOWS.get(exc.provider)
    title = f"Connect {provider_flow.name} account" if provider_flow else "Connect an account"
    return TemplateResponse(request, "credentials/connect.html", _context(
        request, model_admin, title, flow=provider_flow, error=exc.message, expired=True,
    ))


@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest, *, model_admin: admin.ModelAdmin) -> HttpResponse:
    """Import token files; one result line per file, never quoting its contents."""
    _require_add_permission(request, model_admin)
    form = UploadForm(request.POST or None, request.FILES or None)
    results: list[tuple[str, str]] = []  # (message level: success / warning / error, line)
    if request.method == "POST" and form.is_valid():
        for uploaded in form.cleaned_data["files"]:
            results.append(_import_one(uploaded, form.cleaned_data["label"]))
        form = UploadForm(initial={"label": form.cleaned_data["label"]})
    return TemplateResponse(request, "credentials/upload.html", _context(
        request, model_admin, "Upload token files", form=form, results=results,
    ))


def _import_one(uploaded: Any, label: str) -> tuple[str, str]:
    name = uploaded.name
    if uploaded.size > connect.MAX_TOKEN_FILE_BYTES:
        return "error", f"{name}: not imported: larger than {connect.MAX_TOKEN_FILE_BYTES // 1024} KiB"
    try:
        result = connect.import_token_file(uploaded.read(), label=label)
    except ImportFormatError as exc:
        return "error", f"{name}: not imported: {exc}"
    if result.skipped:
        return "warning", f"{name}: skipped, {connect.describe(result.credential)} kept its tokens: {result.skipped}."
    verb = "imported" if result.created else "updated"
    return "success", f"{name}: {verb} {connect.describe(result.credential)}"
