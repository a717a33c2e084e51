from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from gateway.usage.reports import GROUPS, usage_totals


class Command(BaseCommand):
    help = ("Print usage totals, one row per key, user, model, day, credential or provider "
            "(all time, or --days / --since / --until; read from the rollups).")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--by", choices=sorted(GROUPS), default="key")
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
        parser.add_argument("--days", type=int, help="the last N UTC days, today included")
        parser.add_argument("--since", type=_moment, help="YYYY-MM-DD or an ISO time (UTC unless it says)")
        parser.add_argument("--until", type=_moment, help="exclusive; a date means its midnight")

    def handle(self, *args: Any, **options: Any) -> None:
        since, until = options["since"], options["until"]
        if options["days"] is not None:
            if since is not None or options["days"] < 1:
                raise CommandError("--days takes a number >= 1, and not with --since.")
            today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
            since = today - timedelta(days=options["days"] - 1)
        rows = usage_totals(options["by"], since=since, until=until)
        fmt = options["format"]
        if fmt == "json":
            self.stdout.write(json.dumps(rows, indent=2))
        elif fmt == "csv":
            self.stdout.write(_csv(rows), ending="")
        else:
            self.stdout.write(_table(rows))


def _moment(value: str) -> datetime:
    """A date (its UTC midnight) or an ISO datetime (UTC when it has no offset); hours are rounded outwards."""
    try:
        at = datetime.fromisoformat(value) if "T" in value or " " in value else datetime.combine(
            date.fromisoformat(value), datetime.min.time())
    except ValueError:
        raise CommandError(f"Not a date or time: {value!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM).") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No usage recorded yet."
    headers = list(rows[0])
    cells = [[("" if r[h] is None else str(r[h])) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(c) for c in cells)])
