"""``manage.py doctor PREFIX``: check a key end to end, each model it may use, through the public base URL."""
from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey
from accounts.services import config_models, public_base_url
from gateway import doctor

KEY_ENV = "PROXYHUB_KEY"


class Command(BaseCommand):
    help = ("Check the key whose prefix is PREFIX: one tiny streaming request with a tool per model it may use, "
            "sent to this server's public URL as a client would. The raw key comes from --key, "
            f"${KEY_ENV} or stdin. Exits 1 when a model fails.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--key", default="", help=f"the raw key (else ${KEY_ENV}, else read from stdin)")
        parser.add_argument("--base-url", default="", help="the address to check (default: PROXYHUB_PUBLIC_URL)")
        parser.add_argument("--model", action="append", default=[], help="check only this model (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = ApiKey.objects.filter(prefix__startswith=options["prefix"], revoked_at__isnull=True).first()
        if api_key is None:
            raise CommandError("No active key has that prefix.")
        raw = (options["key"] or os.environ.get(KEY_ENV, "") or self._read_stdin()).strip()
        if not doctor.key_matches(api_key, raw):
            raise CommandError(f"That is not the key {api_key.prefix}… (give the whole key with --key, "
                               f"${KEY_ENV} or stdin).")
        # --model may name a model the key may not use: the check then says so, as the gateway would.
        models = doctor.named_models(options["model"]) if options["model"] else config_models(api_key)
        if not models:
            raise CommandError("This key may use no enabled model of the catalog: nothing to check.")
        base_url = (options["base_url"] or public_base_url()).rstrip("/")
        self.stdout.write(f"Checking key {api_key.prefix}… ({api_key.name}, {api_key.user}) through {base_url}")
        results = doctor.check_key(base_url, raw, models)
        for r in results:
            mark = self.style.SUCCESS("ok  ") if r.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark} {r.model:<28} {r.endpoint:<14} {r.detail}")
            if r.fix:
                self.stdout.write(f"     {'':<28} {'':<14} Fix: {r.fix}")
        failed = sum(not r.ok for r in results)
        self.stdout.write(f"{len(results) - failed} of {len(results)} models ok.")
        if failed:
            raise CommandError(f"{failed} of {len(results)} models failed.", returncode=1)

    def _read_stdin(self) -> str:
        if sys.stdin is None or sys.stdin.isatty():
            return ""
        return sys.stdin.readline()
