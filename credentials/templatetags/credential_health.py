"""``{% pool_health %}``: the admin index's per-provider summary of the credential pool."""
from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from credentials.health import pool_health as health

register = template.Library()


@register.inclusion_tag("credentials/_pool_health.html")
def pool_health() -> dict[str, Any]:
    return {"rows": health(timezone.now())}
