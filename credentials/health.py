"""The pool at a glance, per provider, for the admin index."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from credentials.models import Credential, Provider

SHORT_NAMES = {Provider.CLAUDE: "Claude", Provider.CODEX: "ChatGPT (Codex)"}


@dataclass
class ProviderHealth:
    provider: str
    name: str
    ready: int = 0
    cooling: int = 0
    needs_relogin: int = 0
    disabled: int = 0
    next_ready_at: datetime | None = None  # the earliest end of a cooldown
    problems: list[str] = field(default_factory=list)  # "label: reason" of accounts needing re-login

    @property
    def connected(self) -> int:
        return self.ready + self.cooling + self.needs_relogin

    @property
    def serving(self) -> bool:
        return self.ready > 0


def pool_health(now: datetime) -> list[ProviderHealth]:
    rows = {p.value: ProviderHealth(p.value, SHORT_NAMES[p]) for p in Provider}
    fields = ("provider", "status", "cooldown_until", "label", "email", "account_id", "status_reason")
    for c in Credential.objects.only(*fields).order_by("id"):
        row = rows.get(c.provider)
        if row is None:
            continue
        if c.status == Credential.Status.DISABLED:
            row.disabled += 1
        elif c.status == Credential.Status.NEEDS_RELOGIN:
            row.needs_relogin += 1
            row.problems.append(f"{c.label or c.email or c.account_id}: {c.status_reason or 'needs re-login'}")
        elif c.cooldown_until and c.cooldown_until > now:
            row.cooling += 1
            row.next_ready_at = min(filter(None, (row.next_ready_at, c.cooldown_until)))
        else:
            row.ready += 1
    return list(rows.values())
