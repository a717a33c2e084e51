"""Credentials and the model catalog in the admin. Tokens are never rendered."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from credentials import alert_admin  # noqa: F401  (registers the alert history)
from credentials import audit
from credentials.groups import GroupsField
from credentials.models import AuditEntry, Credential, Model
from credentials.readonly_admin import ReadOnlyAdmin
from credentials.refresh import RefreshError, refresh_now
from credentials.urls import admin_urlpatterns
from credentials.window_display import gauges

SECRET_FIELDS = ("access_token", "refresh_token", "id_token")


class CredentialForm(forms.ModelForm):
    groups = GroupsField(help_text="Comma-separated account groups, e.g. core, contractors. "
                                   "Keys bound to groups use only their accounts.")

    class Meta:
        model = Credential
        exclude = SECRET_FIELDS


# The page's buttons: each runs the list's admin action of that name on this one account.
PAGE_BUTTONS = {
    "refresh_now": ("Refresh tokens", "Refresh the OAuth tokens now"),
    "test_request": ("Test", "Send a tiny real request with this account"),
    "enable": ("Enable", "Put the account back into the pool"),
    "disable": ("Disable", "Take the account out of the pool"),
    "clear_cooldown": ("Clear cooldown", "Let the pool use the account again before its cooldown ends"),
}


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    # Sized for a 1280-pixel screen beside the filters: long text wraps inside its column (admin.css).
    # Plan, groups and priority sit under the account's name rather than in columns of their own.
    list_display = ("account", "state_text", "windows_summary", "last_used", "last_error_text")
    list_display_links = ("account",)
    list_filter = ("provider", "status")
    search_fields = ("label", "email", "account_id")
    exclude = SECRET_FIELDS
    # Internal bookkeeping (token_version, refresh_lock_until, windows_polled_at) and the raw windows JSON are
    # in no fieldset, so neither shown nor editable; the panel above the form shows the windows as gauges.
    fieldsets = (
        (None, {"fields": ("provider", "label", "email", "account_id", "plan")}),
        ("Routing", {"fields": ("status", "status_reason", "priority", "groups", "proxy_url")}),
        ("Cooldown", {"fields": ("cooldown_until", "cooldown_reason")}),
        # The last error is in the panel above the form, where it wraps.
        ("History", {"fields": ("expires_at", "last_refresh_at", "last_used_at", "created_at")}),
    )
    readonly_fields = ("email", "account_id", "plan", "expires_at", "last_refresh_at", "last_used_at", "last_error",
                       "last_error_at", "created_at")
    actions = ("refresh_now", "enable", "disable", "clear_cooldown")
    # Adds "Connect Claude account" / "Connect ChatGPT account" / "Upload token files".
    change_list_template = "credentials/change_list.html"
    change_form_template = "credentials/change_form.html"

    class Media:
        css = {"all": ("credentials/admin.css",)}
        js = ("credentials/local_time.js",)

    def get_fieldsets(self, request: HttpRequest, obj: Credential | None = None) -> Any:
        if obj is None:  # adding by hand: the account's facts come from its tokens, not this form
            return ((None, {"fields": ("provider", "label", "priority", "groups", "proxy_url")}),)
        return super().get_fieldsets(request, obj)

    def get_urls(self) -> list[URLPattern]:
        # The wizard's pages first: the default "<path:object_id>/" pattern would swallow them.
        run = path("<int:object_id>/run/<str:action>/", self.admin_site.admin_view(self.run_action_view),
                   name="credentials_credential_run")
        return [run, *admin_urlpatterns(self), *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if obj is not None:
            context["panel"] = self.panel(request, obj)
        return super().change_view(request, object_id, form_url, context)

    def panel(self, request: HttpRequest, obj: Credential) -> dict[str, Any]:
        """What the page shows above the form: state, gauges, and the buttons this admin may press."""
        now = timezone.now()
        actions = self.get_actions(request) if self.has_change_permission(request, obj) else {}
        wanted = ["refresh_now", "test_request"]
        wanted.append("enable" if obj.status != Credential.Status.ACTIVE else "disable")
        if obj.cooldown_until and obj.cooldown_until > now:
            wanted.append("clear_cooldown")
        buttons = [{"name": f"_{name}", "label": PAGE_BUTTONS[name][0], "help": PAGE_BUTTONS[name][1],
                    "url": reverse("admin:credentials_credential_run", args=[obj.pk, name]),
                    "primary": name == "enable", "danger": name == "disable"}
                   for name in wanted if name in actions]
        reconnect = (reverse("admin:credentials_connect_start", kwargs={"provider": obj.provider})
                     if self.has_add_permission(request) else None)
        return {"status": obj.status, "state": self.state_line(obj, now), "plan": obj.plan, "groups": obj.groups or [],
                "expires_at": obj.expires_at, "expired": bool(obj.expires_at and obj.expires_at <= now),
                "last_used_at": obj.last_used_at, "last_error": obj.last_error, "last_error_at": obj.last_error_at,
                "gauges": gauges(obj.windows, now), "buttons": buttons, "reconnect_url": reconnect}

    def run_action_view(self, request: HttpRequest, object_id: int, action: str) -> HttpResponse:
        """POST: run the admin action ``action`` on this one credential, then back to its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, str(object_id))
        if obj is None or not self.has_change_permission(request, obj):
            raise PermissionDenied
        actions = self.get_actions(request)
        if action not in PAGE_BUTTONS or action not in actions:
            raise Http404(f"no action {action!r}")
        func = actions[action][0]
        func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        return HttpResponseRedirect(reverse("admin:credentials_credential_change", args=[obj.pk]))

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if lookup.split("__")[0] in SECRET_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    @staticmethod
    def state_line(obj: Credential, now: datetime) -> str:
        """"Ready", "Cooling down until 14:05 UTC (rate limited)", "Needs re-login: invalid_grant"."""
        if obj.status != Credential.Status.ACTIVE:
            return f"{obj.get_status_display()}" + (f": {obj.status_reason}" if obj.status_reason else "")
        if obj.cooldown_until and obj.cooldown_until > now:
            reason = f" ({obj.cooldown_reason})" if obj.cooldown_reason else ""
            return f"Cooling down until {obj.cooldown_until:%H:%M} UTC{reason}"
        return "Ready"

    @admin.display(description="Account", ordering="label")
    def account(self, obj: Credential) -> str:
        facts = ["Claude" if obj.provider == "claude" else "ChatGPT"]
        facts += [obj.plan] if obj.plan else []
        facts += [f"groups {', '.join(obj.groups)}"] if obj.groups else []
        facts += [f"priority {obj.priority}"] if obj.priority else []
        return format_html('<span class="wrap-text">{}</span><br><small class="quiet">{}</small>',
                           obj.label or obj.email or obj.account_id or f"#{obj.pk}", " · ".join(facts))

    @admin.display(description="State", ordering="status")
    def state_text(self, obj: Credential) -> str:
        if obj.status != Credential.Status.ACTIVE and obj.status_reason and obj.status_reason in (obj.last_error or ""):
            return obj.get_status_display()  # its reason is the Last error column's text: not twice in one row
        return _wrapped(self.state_line(obj, timezone.now()), 70)

    @admin.display(description="Token expires in")
    def expires_in(self, obj: Credential) -> str:
        if obj.expires_at is None:
            return "—"
        seconds = int((obj.expires_at - timezone.now()).total_seconds())
        if seconds <= 0:
            return "expired (refreshes on next use)"
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"

    @admin.display(description="Groups")
    def groups_display(self, obj: Credential) -> str:
        return ", ".join(obj.groups or []) or "—"

    @admin.display(description="Windows")
    def windows_summary(self, obj: Credential) -> str:
        return render_to_string("credentials/_window_gauges.html",
                                {"gauges": gauges(obj.windows, timezone.now()), "compact": True})

    @admin.display(description="Last used", ordering="last_used_at")
    def last_used(self, obj: Credential) -> str:
        return _short_time(obj.last_used_at)

    @admin.display(description="Last error", ordering="last_error_at")
    def last_error_text(self, obj: Credential) -> str:
        if not obj.last_error:
            return "—"
        when = f"{_short_time(obj.last_error_at)}: " if obj.last_error_at else ""
        return _wrapped(when + obj.last_error, 180)

    @admin.action(description="Refresh tokens now")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        for credential in queryset:
            try:
                with audit.operation("credential.refreshed"):
                    fresh = refresh_now(credential)
            except RefreshError as exc:
                state = "needs re-login" if exc.permanent else "try again later"
                audit.record("credential.refresh_failed", target=credential, reason=str(exc)[:300], outcome=state)
                messages.error(request, f"{credential}: refresh failed ({state}): {exc}")
            else:
                messages.success(request, f"{credential}: refreshed, expires {fresh.expires_at:%Y-%m-%d %H:%M} UTC.")

    # The state actions save() row by row (not queryset.update()) so each change reaches the audit trail.
    @admin.action(description="Enable selected credentials")
    def enable(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        n = _save_each(queryset, status=Credential.Status.ACTIVE, status_reason="", cooldown_until=None)
        messages.success(request, f"Enabled {n} credential(s).")

    @admin.action(description="Disable selected credentials")
    def disable(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        n = _save_each(queryset, status=Credential.Status.DISABLED, status_reason="disabled by an admin")
        messages.success(request, f"Disabled {n} credential(s).")

    @admin.action(description="Clear cooldown")
    def clear_cooldown(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        with audit.operation("credential.cooldown_cleared"):
            n = _save_each(queryset, cooldown_until=None, cooldown_reason="")
        messages.success(request, f"Cleared the cooldown of {n} credential(s).")


def _wrapped(text: str, limit: int) -> str:
    """``text`` in a wrapping span, cut at ``limit`` characters; the whole text is its tooltip and on the page."""
    shown = text if len(text) <= limit else text[:limit - 1] + "…"
    return format_html('<span class="wrap-text" title="{}">{}</span>', text, shown)


def _short_time(at: datetime | None) -> str:
    """"4 Dec 17:48" in the admin's time zone: the year only when it is not this one."""
    if at is None:
        return "—"
    local = timezone.localtime(at)
    return f"{local:%-d %b %Y %H:%M}" if local.year != timezone.localtime().year else f"{local:%-d %b %H:%M}"


def _save_each(queryset: QuerySet[Credential], **fields: object) -> int:
    """Set ``fields`` on each credential with save(update_fields=...); returns how many."""
    count = 0
    for credential in queryset:
        for name, value in fields.items():
            setattr(credential, name, value)
        credential.save(update_fields=[*fields, "updated_at"])
        count += 1
    return count


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "provider", "upstream_id", "enabled", "max_output_tokens", "adaptive_thinking")
    list_filter = ("provider", "enabled")
    list_editable = ("enabled",)
    search_fields = ("name", "display_name", "upstream_id")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail, read-only: nobody edits or deletes history from the admin."""

    list_display = ("at", "actor", "action", "target", "address", "changes")
    list_filter = ("action", "target_type", "actor")
    search_fields = ("actor", "target", "action", "target_id")
    date_hierarchy = "at"
    show_full_result_count = False
    list_per_page = 100

    class Media:
        css = {"all": ("credentials/admin.css",)}  # long changes wrap in their column

    @admin.display(description="what changed")
    def changes(self, obj: AuditEntry) -> str:
        return audit.summary(obj.detail)
