from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from credentials.audit import AuditedCommand
from credentials.connect import import_token_file
from credentials.importers import ImportFormatError


class Command(AuditedCommand):
    help = ("Import OAuth token files: CLIProxyAPI claude-*.json / codex-*.json, Claude Code "
            ".credentials.json, Codex CLI auth.json. Accounts seen before are updated.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("paths", nargs="+", help="token files")
        parser.add_argument("--label", default="", help="label for the imported credential(s)")

    def handle(self, *args: Any, **options: Any) -> None:
        failures = 0
        for name in options["paths"]:
            path = Path(name)
            try:
                connected = import_token_file(path.read_bytes(), label=options["label"])
            except (OSError, ImportFormatError) as exc:
                # ImportFormatError messages never contain token values.
                self.stderr.write(f"{path}: not imported: {exc}")
                failures += 1
                continue
            credential, provider = connected.credential, connected.credential.provider
            if connected.skipped:
                self.stdout.write(f"{path}: skipped, {provider} credential #{credential.pk} kept its tokens: "
                                  f"{connected.skipped}")
                continue
            verb = "imported" if connected.created else "updated"
            expiry = f", expires {credential.expires_at:%Y-%m-%d %H:%M} UTC" if credential.expires_at else ""
            self.stdout.write(f"{path}: {verb} {provider} credential #{credential.pk} "
                              f"({credential.email or credential.account_id or 'unknown account'}{expiry})")
        if failures:
            raise CommandError(f"{failures} file(s) could not be imported")
