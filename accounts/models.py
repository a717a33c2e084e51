"""The team side: teammates' API keys."""
from __future__ import annotations

import fnmatch
from datetime import datetime

from django.conf import settings
from django.db import models


class ApiKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, db_index=True, help_text="The visible start of the key.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    allowed_models = models.JSONField(
        default=list, blank=True,
        help_text='Allowed model names or globs, e.g. ["claude-*", "gpt-5.5"]. Empty allows every enabled model.',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name="tokens per month",
        help_text="Input + cache write + output tokens this calendar month (UTC); cache reads are not counted.")
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True, verbose_name="concurrent requests")
    queue_wait_seconds = models.FloatField(
        default=0, verbose_name="queue wait (s)",
        help_text="With a concurrency limit: how long a request may wait for a free slot (0: refused at once).")
    daily_token_limit = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name="tokens per day",
        help_text="Input + cache write + output tokens this UTC day; cache reads are not counted.")
    monthly_cost_limit = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, verbose_name="cost per month (USD)",
        help_text="Estimated from the catalog's list prices, this calendar month (UTC).")
    pool_share_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, verbose_name="fair share (%)",
        help_text="Share of a provider's pool this key keeps while the pool is under pressure "
                  "(PROXYHUB_FAIR_SHARE_THRESHOLD); past it the key waits for the 5-hour window.")
    groups = models.JSONField(
        default=list, blank=True, verbose_name="account groups",
        help_text='Account groups this key may use, e.g. ["core"]. Empty uses every account.')

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def allows(self, model_name: str) -> bool:
        patterns = self.allowed_models or []
        return not patterns or any(fnmatch.fnmatchcase(model_name, p) for p in patterns)
