from __future__ import annotations

from django.apps import AppConfig


class UsageConfig(AppConfig):
    """Installed so Django finds the usage commands here; the models stay in the gateway app (label ``gateway``)."""

    name = "gateway.usage"
    label = "usage"
    default_auto_field = "django.db.models.BigAutoField"
