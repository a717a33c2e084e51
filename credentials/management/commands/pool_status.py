"""``manage.py pool_status [--format table|json] [--poll]``: every account, its state and its live windows."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from credentials.models import Credential
from credentials.window_state import window_list
from credentials.windows import poll_now

ERROR_WIDTH = 60  # the table cuts long errors; --format json has them whole


class Command(BaseCommand):
    help = ("One entry per credential: id, provider, label, state, plan, groups, windows "
            "({name, used_percent, resets_at}), cooling_until, last_error.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--format", choices=("table", "json"), default="table")
        parser.add_argument("--poll", action="store_true",
                            help="ask the providers' usage endpoints for every active account's windows first")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["poll"]:
            for credential_id, outcome in sorted(poll_now().items()):
                if outcome != "polled":
                    self.stderr.write(f"credential {credential_id}: {outcome}")
        now = timezone.now()
        entries = [status_entry(c, now) for c in Credential.objects.order_by("provider", "id")]
        if options["format"] == "json":
            self.stdout.write(json.dumps(entries, indent=2))
        else:
            self.stdout.write(_table(entries))


def status_entry(credential: Credential, now: datetime) -> dict[str, Any]:
    """One credential as pool_status prints it; no token or secret is read."""
    cooling = credential.cooldown_until if credential.cooldown_until and credential.cooldown_until > now else None
    return {
        "id": credential.pk,
        "provider": credential.provider,
        "label": credential.label or credential.email or credential.account_id,
        "state": _state(credential, cooling),
        "plan": credential.plan or None,
        "groups": _groups(credential),
        "windows": window_list(credential.windows),
        "cooling_until": cooling.isoformat() if cooling else None,
        "last_error": credential.last_error or None,
    }


def _state(credential: Credential, cooling: datetime | None) -> str:
    if credential.status != Credential.Status.ACTIVE:
        return str(credential.status)  # needs_relogin | disabled
    return "cooling" if cooling else "ready"


def _groups(credential: Credential) -> list[str]:
    """Group names, once credentials have groups (a relation or a plain list); [] until then."""
    groups = getattr(credential, "groups", None)
    if groups is None:
        return []
    if hasattr(groups, "all"):
        return sorted(str(getattr(g, "name", g)) for g in groups.all())
    return [str(g) for g in groups]


def _windows_text(windows: list[Any]) -> str:
    parts = []
    for window in windows:
        text = f"{window['name']} {window['used_percent']:g}%"
        if window["resets_at"]:
            text += f" (resets {datetime.fromisoformat(window['resets_at']):%a %H:%M} UTC)"
        parts.append(text)
    return "; ".join(parts) or "-"


def _table(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "No credentials yet: connect one in the admin, or run `manage.py login claude|codex`."
    headers = ["id", "provider", "label", "state", "plan", "groups", "windows", "cooling_until", "last_error"]
    rows = []
    for e in entries:
        error = e["last_error"] or ""
        rows.append([str(e["id"]), e["provider"], e["label"], e["state"], e["plan"] or "-",
                     ",".join(e["groups"]) or "-", _windows_text(e["windows"]),
                     e["cooling_until"][:19] + "Z" if e["cooling_until"] else "-",
                     error if len(error) <= ERROR_WIDTH else error[:ERROR_WIDTH - 1] + "…"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])
