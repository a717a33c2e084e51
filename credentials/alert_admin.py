"""The alert history in the admin: read-only, filtered by event, provider, episode state and delivery."""
from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from credentials.alert_models import AlertEvent
from credentials.readonly_admin import ReadOnlyAdmin


class EpisodeFilter(admin.SimpleListFilter):
    title = "episode"
    parameter_name = "episode_state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("open", "ongoing"), ("ended", "ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AlertEvent]) -> QuerySet[AlertEvent]:
        if self.value() == "open":
            return queryset.filter(open_key__isnull=False)
        if self.value() == "ended":
            return queryset.filter(open_key__isnull=True)
        return queryset


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    """Nobody edits or deletes alert history from the admin; it shows what was sent and how delivery went."""

    list_display = ("created_at", "event", "subject", "detail", "ongoing", "resolved_at", "webhook", "email")
    list_filter = ("event", EpisodeFilter, "provider", "webhook_status", "email_status")
    search_fields = ("credential", "key_prefix", "detail", "episode")
    date_hierarchy = "created_at"
    show_full_result_count = False
    list_per_page = 100

    class Media:
        css = {"all": ("credentials/admin.css",)}  # long details wrap in their column

    fields = ("event", "created_at", "resolved_at", "episode", "provider", "credential", "credential_id",
              "key_prefix", "detail", "text", "webhook_status", "webhook_attempts", "email_status",
              "email_attempts", "last_error", "delivered_at")

    @admin.display(description="about")
    def subject(self, obj: AlertEvent) -> str:
        return obj.credential or (f"key {obj.key_prefix}…" if obj.key_prefix else obj.provider)

    @admin.display(description="ongoing", boolean=True)
    def ongoing(self, obj: AlertEvent) -> bool:
        return obj.is_open

    @admin.display(description="webhook")
    def webhook(self, obj: AlertEvent) -> str:
        return _delivery(obj.get_webhook_status_display(), obj.webhook_attempts)

    @admin.display(description="e-mail")
    def email(self, obj: AlertEvent) -> str:
        return _delivery(obj.get_email_status_display(), obj.email_attempts)


def _delivery(status: str, attempts: int) -> str:
    return f"{status} ({attempts} attempt{'s' if attempts != 1 else ''})" if attempts else status
