from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.core.management.base import BaseCommand

from gateway.usage.reports import GROUPS, usage_totals


class Command(BaseCommand):
    help = "Print usage totals, one row per key, user, model or day."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--by", choices=sorted(GROUPS), default="key")
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = usage_totals(options["by"])
        fmt = options["format"]
        if fmt == "json":
            self.stdout.write(json.dumps(rows, indent=2))
        elif fmt == "csv":
            self.stdout.write(_csv(rows), ending="")
        else:
            self.stdout.write(_table(rows))


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
