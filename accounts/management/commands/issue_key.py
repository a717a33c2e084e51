from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from accounts.limit_flags import add_limit_arguments, describe, groups_option, limit_changes
from accounts.services import issue_key_for_username
from credentials.audit import AuditedCommand


class Command(AuditedCommand):
    help = "Issue an API key for USER (created if needed), with optional limits. The key is printed alone on the last line."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user")
        parser.add_argument("--name", default="default", help="a name for the key, e.g. laptop")
        parser.add_argument("--models", default="", help="comma-separated model names or globs (default: all)")
        add_limit_arguments(parser)
        parser.add_argument("--expires-days", type=float, dest="expires_days", help="the key expires after N days")
        parser.add_argument("--groups", help="comma-separated account groups the key may use (default: every account)")

    def handle(self, *args: Any, **options: Any) -> None:
        patterns = [p.strip() for p in options["models"].split(",") if p.strip()]
        changes = limit_changes(options)  # checked before anything is created
        groups = groups_option(options["groups"])
        expires_at = None
        if options["expires_days"] is not None:
            if options["expires_days"] <= 0:
                raise CommandError("--expires-days must be positive")
            expires_at = timezone.now() + timedelta(days=options["expires_days"])
        api_key, raw, created = issue_key_for_username(options["user"], name=options["name"], allowed_models=patterns,
                                                       expires_at=expires_at)
        if changes or groups:
            for field, value in changes.items():
                setattr(api_key, field, value)
            api_key.groups = groups or []
            api_key.save(update_fields=[*changes, "groups"])
        if created:
            self.stdout.write(f"Created user {api_key.user.username}. To let them see their keys, usage and "
                              f"client configs at /me/, set a password: "
                              f"python manage.py changepassword {api_key.user.username}")
        expiry = f", expires {api_key.expires_at:%Y-%m-%d %H:%M} UTC" if api_key.expires_at else ""
        self.stdout.write(f"Key {api_key.prefix}… '{api_key.name}' for {api_key.user.username}, "
                          f"models: {', '.join(patterns) or 'all'}, {describe(api_key)}{expiry}. Shown once:")
        self.stdout.write(raw)
