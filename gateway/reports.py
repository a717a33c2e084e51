"""Usage totals grouped by key, user, model or day."""
from __future__ import annotations

from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from gateway.models import UsageRecord

GROUPS = {
    "key": ("key_prefix", "api_key__name", "user__username"),
    "user": ("user__username",),
    "model": ("requested_model",),
    "day": ("day",),
}
RENAMES = {"api_key__name": "key_name", "user__username": "user", "requested_model": "model"}
TOTALS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def usage_totals(by: str, since: Any = None) -> list[dict[str, Any]]:
    """One dict per group: the group's fields plus requests and token sums."""
    qs = UsageRecord.objects.all()
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if by == "day":
        qs = qs.annotate(day=TruncDate("created_at"))
    fields = GROUPS[by]
    rows = (qs.values(*fields).annotate(requests=Count("id"), **{f"sum_{t}": Sum(t) for t in TOTALS})
            .order_by(*fields))
    result = []
    for row in rows:
        out: dict[str, Any] = {RENAMES.get(f, f): row[f] for f in fields}
        if by == "day":
            out["day"] = row["day"].isoformat() if row["day"] else None
        out["requests"] = row["requests"]
        out.update({t: row[f"sum_{t}"] or 0 for t in TOTALS})
        result.append(out)
    return result
