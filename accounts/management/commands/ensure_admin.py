from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model

from credentials.audit import AuditedCommand


class Command(AuditedCommand):
    help = "Create the first admin account when no user exists yet, and print its password once."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(options["username"], email="", password=password)
        self.stdout.write(
            "Created the first admin account (shown once, change it after logging in):\n"
            f"  username: {options['username']}\n  password: {password}"
        )
