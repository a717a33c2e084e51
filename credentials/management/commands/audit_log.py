"""``manage.py audit_log [--since ISO] [--format table|json]``: the audit trail, oldest first."""
from __future__ import annotations

import json
from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from credentials.audit import summary
from credentials.models import AuditEntry


class Command(BaseCommand):
    help = ("Print the audit trail: who changed what, when and from where (keys, credentials, the catalog, "
            "users, sign-ins). json is a list of {at, actor, action, target, address, detail}.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--since", default="", help="ISO date or time, e.g. 2026-12-01 or 2026-12-01T09:00Z")
        parser.add_argument("--format", choices=("table", "json"), default="table")
        parser.add_argument("--action", default="", help="only this action, or actions starting with it (key.)")

    def handle(self, *args: Any, **options: Any) -> None:
        entries = AuditEntry.objects.order_by("at", "id")
        if options["since"]:
            entries = entries.filter(at__gte=parse_since(options["since"]))
        if options["action"]:
            entries = entries.filter(action__startswith=options["action"])
        if options["format"] == "json":
            self.stdout.write(json.dumps([as_json(e) for e in entries.iterator()], indent=2))
            return
        for e in entries.iterator():
            self.stdout.write("  ".join([f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.target or "—",
                                         e.address or "—", summary(e.detail)]).rstrip())


def parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--since {value!r} is not an ISO date or time (e.g. 2026-12-01T09:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)


def as_json(entry: AuditEntry) -> dict[str, Any]:
    return {"at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action, "target": entry.target,
            "target_type": entry.target_type, "target_id": entry.target_id, "address": entry.address,
            "detail": entry.detail}
