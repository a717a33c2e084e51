from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from accounts.keys import VISIBLE_CHARS
from accounts.limit_flags import CLEARED, add_limit_arguments, describe, groups_option, limit_changes
from accounts.models import ApiKey
from credentials.audit import AuditedCommand


class Command(AuditedCommand):
    help = ("Change an API key's limits (and groups), found by its visible prefix. A flag given 0 removes that "
            "limit; --clear removes every limit first. Other limits are kept.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("prefix", help="the key's visible prefix (at least its first 8 characters)")
        add_limit_arguments(parser)
        parser.add_argument("--groups", help="comma-separated account groups ('' for every account)")
        parser.add_argument("--clear", action="store_true", help="remove every limit (then apply the flags given)")

    def handle(self, *args: Any, **options: Any) -> None:
        prefix = options["prefix"].rstrip("…").strip()
        if len(prefix) < 8:
            raise CommandError("give at least the first 8 characters of the key's prefix")
        matches = list(ApiKey.objects.filter(prefix__startswith=prefix[:VISIBLE_CHARS]).select_related("user"))
        if not matches:
            raise CommandError(f"no key with prefix {prefix!r}")
        if len(matches) > 1:
            raise CommandError(f"{len(matches)} keys start with {prefix!r}: give more of the prefix")
        api_key = matches[0]
        changes = (dict(CLEARED) if options["clear"] else {}) | limit_changes(options)
        groups = groups_option(options["groups"])
        if groups is not None:
            changes["groups"] = groups
        if not changes:
            raise CommandError("nothing to change: give a limit flag, --groups or --clear")
        for field, value in changes.items():
            setattr(api_key, field, value)
        api_key.save(update_fields=list(changes))  # the save signal tells every process (keys generation)
        self.stdout.write(f"Key {api_key.prefix}… '{api_key.name}' of {api_key.user.username}: {describe(api_key)}.")
