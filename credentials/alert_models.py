"""The alert history's table (credentials.alerts writes it; imported by credentials.models)."""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class AlertEvent(models.Model):
    """One alert episode: what happened, to what, and how its delivery went. Never holds a secret.

    ``open_key`` names the episode while it lasts (``relogin:12``, ``unavailable:claude``,
    ``window_high:12:5h``, ``budget_80:ph-ab12:monthly_tokens:2026-12``) and is unique: the
    one process whose INSERT succeeds sends the alert, every other one sees the conflict.
    When the condition clears, ``open_key`` goes back to NULL (NULLs never conflict), so
    the next episode can be inserted again.
    """

    class Event(models.TextChoices):
        CREDENTIAL_NEEDS_RELOGIN = "credential_needs_relogin", "Account needs re-login"
        PROVIDER_UNAVAILABLE = "provider_unavailable", "No ready account for a provider"
        WINDOW_HIGH = "window_high", "Account past the window threshold"
        BUDGET_80 = "budget_80", "Key at 80 % of a limit"
        BUDGET_100 = "budget_100", "Key at 100 % of a limit"

    class Delivery(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        OFF = "off", "Not configured"

    event = models.CharField(max_length=32, choices=Event.choices, db_index=True)
    open_key = models.CharField(max_length=200, null=True, blank=True, unique=True,
                                help_text="Names the episode while it lasts; empty once it ended.")
    episode = models.CharField(max_length=200, help_text="The episode's key, kept after it ended.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="When the condition cleared.")
    provider = models.CharField(max_length=16, blank=True)
    credential_id = models.BigIntegerField(null=True, blank=True)
    credential = models.CharField(max_length=200, blank=True, help_text="The account's label, as it was then.")
    key_prefix = models.CharField(max_length=32, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    text = models.CharField(max_length=800, blank=True, help_text="The message as sent.")
    webhook_status = models.CharField(max_length=8, choices=Delivery.choices, default=Delivery.PENDING)
    webhook_attempts = models.PositiveSmallIntegerField(default=0)
    email_status = models.CharField(max_length=8, choices=Delivery.choices, default=Delivery.PENDING)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True, help_text="Why the last delivery attempt failed.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True,
                                       help_text="A process is delivering it until then (retries after a crash).")

    class Meta:
        verbose_name = "alert"
        verbose_name_plural = "alert history"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event} {self.credential or self.key_prefix or self.provider}"

    @property
    def is_open(self) -> bool:
        return self.open_key is not None
