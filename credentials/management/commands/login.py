"""``manage.py login claude|codex``: connect an account from a terminal (the admin wizard's flow)."""
from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError

from credentials import connect
from credentials.audit import AuditedCommand


class Command(AuditedCommand):
    help = ("Connect a Claude or ChatGPT account: prints the login URL (alone on the first line), then reads "
            "the pasted code#state (Claude) or callback address (ChatGPT) from standard input.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("provider", choices=sorted(str(p) for p in connect.FLOWS), help="claude or codex (ChatGPT)")
        parser.add_argument("--label", default="", help="a name for the account (defaults to its email)")

    def handle(self, *args: Any, **options: Any) -> None:
        flow = connect.FLOWS[options["provider"]]
        pending = connect.start(flow.provider)
        try:
            # The URL alone on the first line, so scripts can pick it up.
            self.stdout.write(connect.authorize_url(pending))
            self.stdout.write(f"\n{flow.instructions}\n")
            self.stdout.write(f"Paste the {flow.paste_label.lower()} here and press Enter: ", ending="")
            self.stdout.flush()
            pasted = sys.stdin.readline().strip()
            if not pasted:
                raise CommandError("Nothing was pasted; no account was connected. Run the command again.")
            self.stdout.write("")
            try:
                result = connect.finish(pending.pk, pasted, label=options["label"])
            except connect.ConnectError as exc:
                raise CommandError(exc.message) from None
        finally:
            connect.cancel(pending)
        verb = "Connected" if result.created else "Updated"
        self.stdout.write(f"{verb} {connect.describe(result.credential)}; credential #{result.credential.pk}.")
