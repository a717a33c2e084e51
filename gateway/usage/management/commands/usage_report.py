from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey
from gateway.usage import conversations
from gateway.usage.reports import GROUPS, Range, totals

CONVERSATION = "conversation"


class Command(BaseCommand):
    help = ("Print usage totals, one row per key, user, model, day, credential or provider "
            "(all time, or --days / --since / --until; read from the rollups), or the top conversations "
            "with their cache hit rate (--by conversation, newest first or by --order cost; read from the "
            "records, so only as far back as they are kept).")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--by", choices=sorted((*GROUPS, CONVERSATION)), default="key")
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
        parser.add_argument("--days", type=int, help="the last N UTC days, today included")
        parser.add_argument("--since", type=_moment, help="YYYY-MM-DD or an ISO time (UTC unless it says)")
        parser.add_argument("--until", type=_moment, help="exclusive; a date means its midnight")
        parser.add_argument("--key", metavar="PREFIX", help="only this key's usage")
        parser.add_argument("--user", metavar="USERNAME", help="only this user's usage")
        parser.add_argument("--order", choices=conversations.ORDERS, default="recent",
                            help="--by conversation: newest first (default) or costliest first")
        parser.add_argument("--limit", type=int, default=conversations.LIMIT,
                            help=f"--by conversation: at most this many (default {conversations.LIMIT})")

    def handle(self, *args: Any, **options: Any) -> None:
        since, until = options["since"], options["until"]
        if options["days"] is not None:
            if since is not None or options["days"] < 1:
                raise CommandError("--days takes a number >= 1, and not with --since.")
            today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
            since = today - timedelta(days=options["days"] - 1)
        if options["limit"] < 1:
            raise CommandError("--limit takes a number >= 1.")
        scope = {"api_key": _key(options["key"]), "user": _user(options["user"])}
        span = Range.of(since, until)
        if options["by"] == CONVERSATION:
            rows = [_plain(r) for r in conversations.conversations(
                span, order=options["order"], limit=options["limit"], **scope)]
        else:
            rows = totals(options["by"], span, **scope)
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


def _key(prefix: str | None) -> ApiKey | None:
    if prefix is None:
        return None
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None:
        raise CommandError(f"No key with the prefix {prefix!r}.")
    return key


def _user(username: str | None) -> Any:
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user {username!r}.")
    return user


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A conversations() row in COLUMNS order, its times as ISO text to the second (JSON has no datetime)."""
    return {c: row[c].isoformat(timespec="seconds") if isinstance(row[c], datetime) else row[c]
            for c in conversations.COLUMNS}


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
