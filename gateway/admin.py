"""Usage records: read-only, newest first."""
from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Count, F, Q, QuerySet, Sum
from django.http import HttpRequest
from django.utils import timezone

from credentials.admin import CredentialAdmin
from credentials.models import Credential
from gateway.probe import probe

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


class CredentialStatusAdmin(CredentialAdmin):
    """The credentials page with usage of the last 24 hours and a "test" action.

    Defined here because it reads usage records and calls the upstream, which
    the credentials app must not import.
    """

    list_display = (*CredentialAdmin.list_display[:-2], "requests_24h", "tokens_24h", *CredentialAdmin.list_display[-2:])
    actions = (*CredentialAdmin.actions, "test_request")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Credential]:
        since = timezone.now() - timedelta(hours=24)
        recent = Q(usagerecord__created_at__gte=since)
        tokens = (F("usagerecord__input_tokens") + F("usagerecord__output_tokens")
                  + F("usagerecord__cache_read_tokens") + F("usagerecord__cache_write_tokens"))
        return super().get_queryset(request).annotate(
            requests_24h=Count("usagerecord", filter=recent), tokens_24h=Sum(tokens, filter=recent))

    @admin.display(description="requests 24 h", ordering="requests_24h")
    def requests_24h(self, obj: Credential) -> int:
        return getattr(obj, "requests_24h", 0)

    @admin.display(description="tokens 24 h", ordering="tokens_24h")
    def tokens_24h(self, obj: Credential) -> int:
        return getattr(obj, "tokens_24h", None) or 0

    @admin.action(description="Test: send a tiny real request")
    def test_request(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        for credential in queryset:
            result = probe(credential)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{credential}: {result.status or 'no answer'} {result.message} "
                                       f"({result.seconds:.1f} s)", level)


admin.site.unregister(Credential)
admin.site.register(Credential, CredentialStatusAdmin)
