"""Usage records (read-only, newest first, fast at millions of rows) and the credentials page with 24 h usage."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Iterator

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import BigIntegerField, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import ApiKey
from credentials.admin import CredentialAdmin
from credentials.models import Credential, Provider
from gateway.models import UsageRecord, UsageRollup
from gateway.probe import probe
from gateway.usage.amounts import compact_count
from gateway.usage.reports import csv_lines
from gateway.usage.views import admin_params, stream_csv

# Counting stops here: a filtered list of more rows shows this many (1,000 pages of 100).
COUNT_CAP = 100_000
EXPORT_COLUMNS = ("created_at", "request_id", "key_prefix", "user_id", "provider", "credential_id",
                  "endpoint", "requested_model", "upstream_model", "stream", "status_code", "outcome",
                  "error_type", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                  "reasoning_tokens", "attempts", "duration_ms", "ttfb_ms")


class CappedCountPaginator(Paginator):
    """A paginator that never counts a whole big table, and fetches a page by ids first.

    COUNT(*) over a million records took seconds (issue 7): the count stops at
    COUNT_CAP, and an unfiltered list past it shows the table's estimated size.
    A page reads its ids with OFFSET over the ordering index only, then loads
    those rows, so a deep page does not read the rows it skips.
    """

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        counted = qs.order_by()[:COUNT_CAP].count()
        if counted < COUNT_CAP or qs.query.where:
            return counted
        return max(counted, estimated_rows(UsageRecord._meta.db_table))

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:bottom + self.per_page])
        return self._get_page(self.object_list.filter(pk__in=ids), number, self)


def estimated_rows(table: str) -> int:
    """The planner's row estimate on Postgres; the id span elsewhere (exact until rows are pruned)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
            row = cursor.fetchone()
            if row and row[0] > 0:
                return int(row[0])
        # Two subqueries: SQLite reads MIN and MAX off the index only when each stands alone.
        name = connection.ops.quote_name(table)
        cursor.execute(f"SELECT COALESCE((SELECT MAX(id) FROM {name}) - (SELECT MIN(id) FROM {name}) + 1, 0)")
        return int(cursor.fetchone()[0])


class ProviderFilter(admin.SimpleListFilter):
    """Fixed choices: the default filter would scan the table for its distinct values."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(v), str(label)) for v, label in Provider.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
        return queryset.filter(provider=self.value()) if self.value() else queryset


class ModelFilter(admin.SimpleListFilter):
    """``?model=NAME``: the model with or without a (level), as the rollups count it (the Overview's drill-down).

    Its only choice is the model asked for (listing all would need a scan); the Overview's links set it.
    """

    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # The admin applies only filters that show choices: without one, ?model= would be ignored.
        name = request.GET.get(self.parameter_name, "")
        return [(name, name)] if name else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
        name = self.value()
        if not name:
            return queryset
        return queryset.filter(Q(requested_model=name) | Q(requested_model__startswith=f"{name}("))


class CreatedFilter(admin.SimpleListFilter):
    """Recent periods over the created_at index, instead of date_hierarchy's DISTINCT dates over every row."""

    title = "created"
    parameter_name = "within"
    PERIODS = {"1h": ("Last hour", timedelta(hours=1)), "24h": ("Last 24 hours", timedelta(hours=24)),
               "7d": ("Last 7 days", timedelta(days=7)), "30d": ("Last 30 days", timedelta(days=30)),
               "90d": ("Last 90 days", timedelta(days=90))}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(k, label) for k, (label, _span) in self.PERIODS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
        if self.value() not in self.PERIODS:
            return queryset
        return queryset.filter(created_at__gte=timezone.now() - self.PERIODS[str(self.value())][1])


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    # Ten columns that fit beside the filters at 1280 pixels: related fields share a cell, tokens are shortened
    # (the exact count is the cell's tooltip and on the record's page).
    list_display = ("when", "key_user", "model_name", "endpoint_text", "status", "input", "cache_read", "cache_write",
                    "output", "timing")
    list_filter = (CreatedFilter, "outcome", ProviderFilter, "stream", ModelFilter)
    list_select_related = ("user",)
    # Exact matches only (see get_search_results): a substring search reads every row.
    search_fields = ("request_id",)
    search_help_text = "A request id, a key prefix or a model name, exactly."
    # The created_at index serves this order; the id breaks ties the way the admin wants a total order.
    ordering = ("-created_at", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False

    class Media:
        css = {"all": ("credentials/admin.css",)}  # the lists' shared fit-the-screen rules

    @admin.display(description="When", ordering="created_at")
    def when(self, obj: UsageRecord) -> str:
        return format_html('<span class="nowrap">{}</span>', f"{timezone.localtime(obj.created_at):%-d %b %H:%M:%S}")

    @admin.display(description="Key and user")
    def key_user(self, obj: UsageRecord) -> str:
        return format_html('<code>{}</code><br><small class="quiet">{}</small>', obj.key_prefix or "—",
                           obj.user.username if obj.user else "")

    @admin.display(description="Model", ordering="requested_model")
    def model_name(self, obj: UsageRecord) -> str:
        return obj.requested_model or "—"

    @admin.display(description="Endpoint")
    def endpoint_text(self, obj: UsageRecord) -> str:
        return f"{obj.endpoint}{' · stream' if obj.stream else ''}{' · check' if obj.is_check else ''}"

    @admin.display(description="Status", ordering="status_code")
    def status(self, obj: UsageRecord) -> str:
        return format_html('<span title="{}">{} {}</span>', obj.error_type, obj.status_code or "",
                           obj.get_outcome_display())

    def _tokens(self, n: int | None) -> str:
        return format_html('<span class="nowrap" title="{}">{}</span>', f"{n or 0:,}", compact_count(n or 0))

    @admin.display(description="Input", ordering="input_tokens")
    def input(self, obj: UsageRecord) -> str:
        return self._tokens(obj.input_tokens)

    @admin.display(description="Cache read", ordering="cache_read_tokens")
    def cache_read(self, obj: UsageRecord) -> str:
        return self._tokens(obj.cache_read_tokens)

    @admin.display(description="Cache write", ordering="cache_write_tokens")
    def cache_write(self, obj: UsageRecord) -> str:
        return self._tokens(obj.cache_write_tokens)

    @admin.display(description="Output", ordering="output_tokens")
    def output(self, obj: UsageRecord) -> str:
        return self._tokens(obj.output_tokens)

    @admin.display(description="Time (first byte)", ordering="duration_ms")
    def timing(self, obj: UsageRecord) -> str:
        first = f" ({obj.ttfb_ms / 1000:.1f} s)" if obj.ttfb_ms is not None else ""
        total = f"{obj.duration_ms / 1000:.1f} s" if obj.duration_ms is not None else "—"
        return format_html('<span class="nowrap">{}</span>', total + first)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[UsageRecord],
                           search_term: str) -> tuple[QuerySet[UsageRecord], bool]:
        """Records whose request id, key prefix or model (with or without a level) is the term: indexed lookups."""
        term = search_term.strip()
        if not term:
            return queryset, False
        keys = list(ApiKey.objects.filter(prefix=term).values_list("pk", flat=True))
        match = Q(request_id=term) | Q(requested_model=term)
        if keys:
            match |= Q(api_key_id__in=keys)
        return queryset.filter(match), False

    def get_urls(self) -> list[URLPattern]:
        export = path("export/", self.admin_site.admin_view(self.export_view), name="gateway_usagerecord_export")
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The records of the usage report's range (and key) as CSV, oldest first, streamed."""
        params = admin_params(request)
        qs = UsageRecord.objects.all()
        if params.span.until is not None:
            qs = qs.filter(created_at__lt=params.span.until)
        if params.api_key is not None:
            qs = qs.filter(api_key_id=params.api_key.pk)
        # Usernames from a dict, not a join: with a join Postgres sorted the whole range before the first row.
        users = dict(get_user_model().objects.values_list("pk", "username"))
        rows = ((*r[:3], users.get(r[3]), *r[4:]) for r in in_pages(qs, EXPORT_COLUMNS, since=params.span.since))
        header = [c.replace("user_id", "user") for c in EXPORT_COLUMNS]
        return stream_csv(request, csv_lines(rows, header), f"proxyhub-usage-records-{params.slug()}.csv")


def in_pages(qs: QuerySet[UsageRecord], columns: tuple[str, ...], *, since: datetime | None = None,
             size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """``columns`` of the records of ``qs`` from ``since`` on, oldest first, ``size`` at a time after the last one seen.

    ``qs`` must not bound created_at from below itself: SQLite would start every
    page's index range at that bound instead of at the last record seen.

    Short keyset queries over the (created_at, id) order rather than one cursor:
    Postgres materialises a WITH HOLD cursor (Django's server-side iterator
    outside a transaction) before its first row, 2 s for 90 days of a million
    rows, and a transaction held open for a whole download would block SQLite's writers.
    """
    ordered = qs.order_by("created_at", "id")
    rest = ordered if since is None else ordered.filter(created_at__gte=since)
    while True:
        page = list(rest.values_list("created_at", "id", *columns)[:size])
        for row in page:
            yield row[2:]
        if len(page) < size:
            return
        at, last = page[-1][0], page[-1][1]
        # A plain lower bound first, so the index range starts there (an OR alone made SQLite scan from the start).
        rest = ordered.filter(created_at__gte=at).exclude(created_at=at, id__lte=last)


class CredentialStatusAdmin(CredentialAdmin):
    """The credentials page with usage of the last 24 hours and a "test" action.

    Defined here because it reads usage and calls the upstream, which the
    credentials app must not import.
    """

    list_display = (*CredentialAdmin.list_display[:-2], "requests_24h", "tokens_24h", *CredentialAdmin.list_display[-2:])
    actions = (*CredentialAdmin.actions, "test_request")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Credential]:
        # The hour rollups of this hour and the 23 before: a few thousand rows, not a day of records.
        since = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
        recent = (UsageRollup.objects.filter(span=UsageRollup.Span.HOUR, bucket__gte=since,
                                             credential_id=OuterRef("pk"))
                  .order_by().values("credential_id"))
        tokens = F("input_tokens") + F("output_tokens") + F("cache_read_tokens") + F("cache_write_tokens")
        return super().get_queryset(request).annotate(
            requests_24h=Coalesce(Subquery(recent.annotate(n=Sum("requests")).values("n"),
                                           output_field=BigIntegerField()), 0),
            tokens_24h=Coalesce(Subquery(recent.annotate(n=Sum(tokens)).values("n"),
                                         output_field=BigIntegerField()), 0))

    @admin.display(description="Requests 24 h", ordering="requests_24h")
    def requests_24h(self, obj: Credential) -> int:
        return getattr(obj, "requests_24h", 0)

    @admin.display(description="Tokens 24 h", ordering="tokens_24h")
    def tokens_24h(self, obj: Credential) -> str:
        tokens = getattr(obj, "tokens_24h", None) or 0
        return format_html('<span title="{}">{}</span>', f"{tokens:,}", compact_count(tokens))

    @admin.action(description="Test: send a tiny real request")
    def test_request(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        for credential in queryset:
            result = probe(credential)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{credential}: {result.status or 'no answer'} {result.message} "
                                       f"({result.seconds:.1f} s)", level)


admin.site.unregister(Credential)
admin.site.register(Credential, CredentialStatusAdmin)
