"""One row per /v1 request (who, which model and credential, tokens and timing), and their rollups.

The models belong to the gateway app (``app_label``); they live here, beside
the writer that inserts them and the reports that read them.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models


class UsageRecord(models.Model):
    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        UPSTREAM_ERROR = "upstream_error", "Upstream error"
        CLIENT_CANCELLED = "client_cancelled", "Client cancelled"
        REJECTED = "rejected", "Rejected by the gateway"

    created_at = models.DateTimeField(db_index=True)
    # Made by the gateway for each row and unique, so a journal replayed twice inserts each row once.
    uid = models.CharField(max_length=32, null=True, blank=True, unique=True, editable=False)
    request_id = models.CharField(max_length=100, blank=True, db_index=True,
                                  help_text="The x-request-id: the client's own when it sent one.")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    key_prefix = models.CharField(max_length=16, blank=True)
    credential = models.ForeignKey("credentials.Credential", null=True, blank=True, on_delete=models.SET_NULL)
    provider = models.CharField(max_length=16, blank=True)
    endpoint = models.CharField(max_length=64)
    requested_model = models.CharField(max_length=100, blank=True)
    upstream_model = models.CharField(max_length=100, blank=True)
    stream = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.OK)
    error_type = models.CharField(max_length=64, blank=True)
    input_tokens = models.PositiveIntegerField(default=0, help_text="Uncached input tokens.")
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0, help_text="All output, reasoning included.")
    reasoning_tokens = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=1)
    duration_ms = models.PositiveIntegerField(default=0)
    ttfb_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to the first byte sent to the client.")
    is_check = models.BooleanField(default=False, help_text="A key check (doctor / the Check button), not real work.")
    conversation = models.CharField(
        max_length=64, blank=True, default="",
        help_text="The client's conversation (Claude Code / Codex session, prompt_cache_key); empty when it sent none.")

    class Meta:
        app_label = "gateway"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["api_key", "created_at"]),
            # The per-conversation cache report reads one key's conversations over a period.
            models.Index(fields=["api_key", "conversation", "created_at"], name="usage_record_conversation"),
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["requested_model", "created_at"]),
            # The admin's outcome filter: a page and its (capped) count of rare errors without a table scan.
            models.Index(fields=["outcome", "created_at"], name="usage_record_outcome"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.endpoint} {self.requested_model} {self.status_code}"


# The rollups' latency histogram buckets (upper bounds, ms); a value on a bound counts in that bucket.
DURATION_BOUNDS_MS = (1000, 2000, 5000, 10000, 20000, 40000, 80000)
TTFB_BOUNDS_MS = (250, 500, 1000, 2000, 4000, 8000, 16000)
DURATION_BINS = tuple(f"duration_h{i}" for i in range(len(DURATION_BOUNDS_MS) + 1))
TTFB_BINS = tuple(f"ttfb_h{i}" for i in range(len(TTFB_BOUNDS_MS) + 1))


class UsageRollup(models.Model):
    """Sums of usage records per hour or per UTC day, key, model, credential and outcome.

    The writer adds every inserted record to its hour and its day in the same
    transaction, so reports read these instead of scanning records, and
    pruning old records (PROXYHUB_USAGE_RETENTION_DAYS) never changes a report.
    Ids are plain integers (0 for none), not foreign keys: a rollup outlives
    the key, user or credential it counts.
    """

    class Span(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"

    span = models.CharField(max_length=4, choices=Span.choices)
    bucket = models.DateTimeField(help_text="Start of the hour or UTC day.")
    api_key_id = models.BigIntegerField(default=0)
    user_id = models.BigIntegerField(default=0)
    key_prefix = models.CharField(max_length=16, blank=True)
    provider = models.CharField(max_length=16, blank=True)
    model = models.CharField(max_length=100, blank=True, help_text="The requested model without a (level) suffix.")
    credential_id = models.BigIntegerField(default=0)
    outcome = models.CharField(max_length=20)
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    duration_ms = models.BigIntegerField(default=0, help_text="Summed.")
    ttfb_ms = models.BigIntegerField(default=0, help_text="Summed over the requests that sent a byte.")
    ttfb_count = models.BigIntegerField(default=0)
    # Latency histograms for the Overview's p50/p95 (sums alone give only averages): requests per
    # bucket, bucket i up to DURATION_BOUNDS_MS[i] / TTFB_BOUNDS_MS[i], the last one everything longer.
    duration_h0 = models.BigIntegerField(default=0)
    duration_h1 = models.BigIntegerField(default=0)
    duration_h2 = models.BigIntegerField(default=0)
    duration_h3 = models.BigIntegerField(default=0)
    duration_h4 = models.BigIntegerField(default=0)
    duration_h5 = models.BigIntegerField(default=0)
    duration_h6 = models.BigIntegerField(default=0)
    duration_h7 = models.BigIntegerField(default=0)
    ttfb_h0 = models.BigIntegerField(default=0)
    ttfb_h1 = models.BigIntegerField(default=0)
    ttfb_h2 = models.BigIntegerField(default=0)
    ttfb_h3 = models.BigIntegerField(default=0)
    ttfb_h4 = models.BigIntegerField(default=0)
    ttfb_h5 = models.BigIntegerField(default=0)
    ttfb_h6 = models.BigIntegerField(default=0)
    ttfb_h7 = models.BigIntegerField(default=0)

    class Meta:
        app_label = "gateway"
        constraints = [
            models.UniqueConstraint(
                fields=["span", "bucket", "api_key_id", "user_id", "key_prefix", "provider", "model",
                        "credential_id", "outcome"],
                name="usage_rollup_identity"),
        ]
        indexes = [
            models.Index(fields=["span", "bucket"]),
            models.Index(fields=["span", "user_id", "bucket"]),
            models.Index(fields=["span", "api_key_id", "bucket"]),
            # Covers the reports' scans (gateway/usage/reports.py): a 90-day report reads this index
            # alone, already in (bucket, model) order for its chart, instead of seeking each row.
            models.Index(fields=["span", "bucket", "model", "api_key_id", "user_id", "key_prefix", "provider",
                                 "credential_id", "requests", "input_tokens", "output_tokens",
                                 "cache_read_tokens", "cache_write_tokens"], name="usage_rollup_report"),
        ]

    def __str__(self) -> str:
        return f"{self.span} {self.bucket:%Y-%m-%d %H:%M} {self.key_prefix} {self.model} {self.requests}"


class ConversationRollup(models.Model):
    """Sums of usage records per UTC day, key, conversation and model: the per-conversation report's source.

    Kept like UsageRollup (gateway/usage/store.py adds every inserted record
    with a conversation, key checks left out, in the same transaction), so
    the report reads a few rows per conversation and day instead of every
    record, and pruning records never changes it. Ids are plain integers (0
    for none), as in UsageRollup: a row outlives its key and user.
    """

    day = models.DateTimeField(help_text="Start of the UTC day.")
    api_key_id = models.BigIntegerField(default=0)
    user_id = models.BigIntegerField(default=0)
    key_prefix = models.CharField(max_length=16, blank=True)
    conversation = models.CharField(max_length=64)
    model = models.CharField(max_length=100, blank=True, help_text="The requested model without a (level) suffix.")
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    first_seen = models.DateTimeField(help_text="The day's first request of the conversation with this model.")
    last_seen = models.DateTimeField(help_text="The day's last one.")

    class Meta:
        app_label = "gateway"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "api_key_id", "user_id", "key_prefix", "conversation", "model"],
                name="conversation_rollup_identity"),
        ]
        indexes = [
            # Newest first: walked from the end until enough conversations are met (all keys, a key, a user).
            models.Index(fields=["last_seen"], name="conv_rollup_last_seen"),
            models.Index(fields=["api_key_id", "last_seen"], name="conv_rollup_key_last_seen"),
            models.Index(fields=["user_id", "last_seen"], name="conv_rollup_user_last_seen"),
            # One conversation's days, for the sums of the chosen conversations; and, covering the tokens, the
            # costliest-first scan reads this index alone, already in (key, conversation) order.
            models.Index(fields=["api_key_id", "conversation", "day", "model", "input_tokens", "cache_read_tokens",
                                 "cache_write_tokens", "output_tokens"], name="conv_rollup_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.key_prefix} {self.conversation} {self.model} {self.requests}"
