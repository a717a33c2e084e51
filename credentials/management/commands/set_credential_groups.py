from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.db.models import Q

from credentials.audit import AuditedCommand
from credentials.groups import parse_groups
from credentials.models import Credential


class Command(AuditedCommand):
    help = "Put a credential (by id or label) in account groups, e.g. `set_credential_groups 3 core,contractors`; '' for none."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("credential", help="the credential's id or label (or e-mail)")
        parser.add_argument("groups", help="comma-separated group names; an empty string removes every group")

    def handle(self, *args: Any, **options: Any) -> None:
        ref = options["credential"].strip()
        try:
            groups = parse_groups(options["groups"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        query = Q(label=ref) | Q(email=ref)
        if ref.isdigit():
            query |= Q(pk=int(ref))
        matches = list(Credential.objects.filter(query))
        if not matches:
            raise CommandError(f"no credential with id or label {ref!r}")
        if len(matches) > 1:
            raise CommandError(f"{len(matches)} credentials match {ref!r}: use the id (pool_status lists them)")
        credential = matches[0]
        credential.groups = groups
        credential.save(update_fields=["groups", "updated_at"])  # the save signal tells every process
        self.stdout.write(f"{credential} (id {credential.pk}): groups {', '.join(groups) or 'none'}.")
