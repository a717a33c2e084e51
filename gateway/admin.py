"""Usage records: read-only, newest first."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from gateway.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "key_prefix", "user", "requested_model", "endpoint", "stream", "status_code",
                    "outcome", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                    "duration_ms", "ttfb_ms")
    list_filter = ("outcome", "provider", "endpoint", "stream")
    list_select_related = ("user",)
    search_fields = ("key_prefix", "requested_model", "user__username")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
