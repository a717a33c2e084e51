"""The audit trail's table (credentials.audit writes it; imported by credentials.models)."""
from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One change or sign-in: when, who, from where, what, and the field diffs (never a secret value)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150, help_text="A username, cli:<os user> for commands, or system.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", db_constraint=False,
                             help_text="The acting user, while the account exists.")
    address = models.GenericIPAddressField(null=True, blank=True, help_text="Source address of the request.")
    action = models.CharField(max_length=60, db_index=True, help_text="e.g. key.issued, credential.imported.")
    target_type = models.CharField(max_length=40, blank=True, db_index=True)
    target_id = models.CharField(max_length=64, blank=True)
    target = models.CharField(max_length=200, blank=True, help_text="What was changed, as it was named then.")
    detail = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder,
                              help_text="What changed: {field: [old, new]}, and notes. Secrets show as (changed).")

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail entries"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
