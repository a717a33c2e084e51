from __future__ import annotations

from typing import Any

from accounts.services import issue_key_for_username
from credentials.audit import AuditedCommand


class Command(AuditedCommand):
    help = "Issue an API key for USER (created if needed). The key is printed alone on the last line."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user")
        parser.add_argument("--name", default="default", help="a name for the key, e.g. laptop")
        parser.add_argument("--models", default="", help="comma-separated model names or globs (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        patterns = [p.strip() for p in options["models"].split(",") if p.strip()]
        api_key, raw, created = issue_key_for_username(options["user"], name=options["name"], allowed_models=patterns)
        if created:
            self.stdout.write(f"Created user {api_key.user.username}. To let them see their keys, usage and "
                              f"client configs at /me/, set a password: "
                              f"python manage.py changepassword {api_key.user.username}")
        self.stdout.write(f"Key {api_key.prefix}… '{api_key.name}' for {api_key.user.username}, "
                          f"models: {', '.join(patterns) or 'all'}. Shown once:")
        self.stdout.write(raw)
