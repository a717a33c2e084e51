from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.client_configs import FORMATS
from accounts.models import ApiKey
from accounts.services import config_models, public_base_url


class Command(BaseCommand):
    help = "Print a ready client configuration for the key whose prefix is PREFIX (only the models it may use)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--format", choices=sorted(FORMATS), default="factory")
        parser.add_argument("--base-url", default="", help="the server address teammates use (default: settings)")

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = ApiKey.objects.filter(prefix__startswith=options["prefix"], revoked_at__isnull=True).first()
        if api_key is None:
            raise CommandError("No active key has that prefix.")
        url = options["base_url"] or public_base_url()
        self.stdout.write(FORMATS[options["format"]](url, config_models(api_key), None), ending="")
