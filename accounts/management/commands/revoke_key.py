from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from accounts.services import revoke_key
from credentials.audit import AuditedCommand


class Command(AuditedCommand):
    help = "Revoke the API key(s) whose visible prefix starts with PREFIX."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        if len(options["prefix"]) < 8:
            raise CommandError("Give at least 8 characters of the key prefix.")
        count = revoke_key(options["prefix"])
        if not count:
            raise CommandError("No active key has that prefix.")
        self.stdout.write(f"Revoked {count} key(s).")
