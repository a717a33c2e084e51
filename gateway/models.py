"""One row per /v1 request: who, which model and credential, tokens and timing."""
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

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["api_key", "created_at"]),
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["requested_model", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.endpoint} {self.requested_model} {self.status_code}"
