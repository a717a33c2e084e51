from __future__ import annotations

import sys
from typing import Any

from django.apps import AppConfig

# Machine bookkeeping a credential's row carries: never part of an audit entry.
CREDENTIAL_BOOKKEEPING = ("token_version", "refresh_lock_until", "last_refresh_at", "last_used_at", "last_error",
                          "last_error_at", "windows", "windows_polled_at", "created_at", "updated_at")
# Listed in a diff, but a change of only these (a background refresh, a cooldown) is not an admin's change.
CREDENTIAL_QUIET = ("access_token", "refresh_token", "id_token", "expires_at", "email", "account_id", "plan",
                    "status_reason", "cooldown_until", "cooldown_reason")


def credential_action(created: bool, changes: dict[str, Any]) -> str:
    status = changes.get("status")
    if created:
        return "credential.created"
    if status and status[1] == "disabled":
        return "credential.disabled"
    if status and status[0] == "disabled":
        return "credential.enabled"
    return "credential.changed"


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Upstream accounts and models"

    def ready(self) -> None:
        from credentials import audit
        from credentials.models import Credential, Model

        audit.use_command_line_actor(sys.argv)
        audit.track(Credential, "credential", secret=("access_token", "refresh_token", "id_token"),
                    hidden=CREDENTIAL_BOOKKEEPING, quiet=CREDENTIAL_QUIET, classify=credential_action)
        audit.track(Model, "model", hidden=("created_at",))
