"""Credentials and the model catalog in the admin. Tokens are never rendered."""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.urls import URLPattern

from credentials import alert_admin  # noqa: F401  (registers the alert history)
from credentials import audit
from credentials.groups import GroupsField
from credentials.models import AuditEntry, Credential, Model
from credentials.refresh import RefreshFailed, refresh_now
from credentials.urls import admin_urlpatterns

SECRET_FIELDS = ("access_token", "refresh_token", "id_token")


class CredentialForm(forms.ModelForm):
    groups = GroupsField(help_text="Comma-separated account groups, e.g. core, contractors. "
                                   "Keys bound to groups use only their accounts.")

    class Meta:
        model = Credential
        exclude = SECRET_FIELDS


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    # The provider and account are in __str__; the provider filter sits beside the list.
    list_display = ("__str__", "plan", "state", "expires_in", "windows_summary", "priority", "groups_display",
                    "last_used_at", "last_error")
    list_filter = ("provider", "status")
    search_fields = ("label", "email", "account_id")
    exclude = SECRET_FIELDS
    readonly_fields = ("email", "account_id", "plan", "expires_at", "token_version", "last_refresh_at",
                       "last_used_at", "last_error", "last_error_at", "windows", "created_at", "updated_at",
                       "refresh_lock_until")
    actions = ("refresh_now", "enable", "disable", "clear_cooldown")
    # Adds "Connect Claude account" / "Connect ChatGPT account" / "Upload token files".
    change_list_template = "credentials/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        # The wizard's pages first: the default "<path:object_id>/" pattern would swallow them.
        return admin_urlpatterns(self) + super().get_urls()

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if lookup.split("__")[0] in SECRET_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="state")
    def state(self, obj: Credential) -> str:
        now = timezone.now()
        if obj.status != Credential.Status.ACTIVE:
            return f"{obj.get_status_display()}" + (f": {obj.status_reason}" if obj.status_reason else "")
        if obj.cooldown_until and obj.cooldown_until > now:
            return f"cooling down until {obj.cooldown_until:%H:%M:%S} UTC"
        return "active"

    @admin.display(description="expires in")
    def expires_in(self, obj: Credential) -> str:
        if obj.expires_at is None:
            return "—"
        seconds = int((obj.expires_at - timezone.now()).total_seconds())
        if seconds <= 0:
            return "expired (refreshes on next use)"
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"

    @admin.display(description="groups")
    def groups_display(self, obj: Credential) -> str:
        return ", ".join(obj.groups or []) or "—"

    @admin.display(description="windows")
    def windows_summary(self, obj: Credential) -> str:
        parts = []
        for name in ("5h", "7d"):
            entry = (obj.windows or {}).get(name) or {}
            if "utilization" in entry:
                text = f"{name} {entry['utilization'] * 100:.0f}%"
                if entry.get("reset"):
                    reset = datetime.fromtimestamp(entry["reset"], tz=dt_timezone.utc)
                    text += f", resets {reset:%a %H:%M}"
                parts.append(text)
        return format_html_join(mark_safe("<br>"), "<span style='white-space:nowrap'>{}</span>", ((p,) for p in parts)) if parts else "—"

    @admin.action(description="Refresh tokens now")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        for credential in queryset:
            try:
                with audit.operation("credential.refreshed"):
                    fresh = refresh_now(credential)
            except RefreshFailed as exc:
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
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail, read-only: nobody edits or deletes history from the admin."""

    list_display = ("at", "actor", "action", "target", "address", "changes")
    list_filter = ("action", "target_type", "actor")
    search_fields = ("actor", "target", "action", "target_id")
    date_hierarchy = "at"
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="what changed")
    def changes(self, obj: AuditEntry) -> str:
        return audit.summary(obj.detail)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
