"""The database backend's tables for state every process shares (used when REDIS_URL is unset).

Times are epoch seconds (floats) from the process's clock, as the Redis backend
uses its server's clock: the same arithmetic in both backends, no time zones.
"""
from __future__ import annotations

from django.db import models


class SharedValue(models.Model):
    """A named value: a counter (``number``), a generation, or a map entry (``text``) with an expiry."""

    key = models.CharField(max_length=200, unique=True)
    number = models.BigIntegerField(default=0)
    text = models.TextField(blank=True, default="")
    expires_at = models.FloatField(null=True, blank=True, db_index=True,
                                   help_text="Epoch seconds; empty means it never expires.")

    class Meta:
        app_label = "gateway"

    def __str__(self) -> str:
        return self.key


class SharedEvent(models.Model):
    """One counted event of a sliding window (a request, or ``amount`` tokens) at a time."""

    key = models.CharField(max_length=200)
    at = models.FloatField(help_text="Epoch seconds.")
    amount = models.BigIntegerField(default=1)

    class Meta:
        app_label = "gateway"
        indexes = [models.Index(fields=["key", "at"], name="gateway_sharedevent_key_at")]

    def __str__(self) -> str:
        return f"{self.key}@{self.at}"


class SharedLease(models.Model):
    """A held concurrency slot; it lapses at ``expires_at`` if its process dies without releasing it."""

    key = models.CharField(max_length=200)
    holder = models.CharField(max_length=64, unique=True)
    expires_at = models.FloatField(help_text="Epoch seconds.")

    class Meta:
        app_label = "gateway"
        indexes = [models.Index(fields=["key", "expires_at"], name="gateway_sharedlease_key_exp")]

    def __str__(self) -> str:
        return f"{self.key}:{self.holder}"
