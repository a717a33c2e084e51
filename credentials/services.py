"""Multi-step credential writes. Sync; the gateway awaits them through sync_to_async.

Races are settled with conditional UPDATEs (compare-and-swap), which behave
the same on SQLite and Postgres: claim_refresh() lets exactly one process
refresh a credential, and the others wait for its token_version to move.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from credentials import alerts, freshness
from credentials import window_state
from credentials.models import Credential
from credentials.oauth import TokenSet

REFRESH_LOCK_SECONDS = 30


def claim_refresh(credential_id: int, seen_version: int) -> bool:
    """Take the refresh lock if nobody refreshed since ``seen_version`` and no live lock exists."""
    now = timezone.now()
    return Credential.objects.filter(
        Q(refresh_lock_until__isnull=True) | Q(refresh_lock_until__lt=now),
        id=credential_id, token_version=seen_version,
    ).update(refresh_lock_until=now + timedelta(seconds=REFRESH_LOCK_SECONDS)) == 1


def release_refresh(credential_id: int) -> None:
    Credential.objects.filter(id=credential_id).update(refresh_lock_until=None)


def save_tokens(credential_id: int, tokens: TokenSet) -> Credential:
    """Store a refreshed token pair atomically with the version bump, and release the lock."""
    now = timezone.now()
    with transaction.atomic():
        credential = Credential.objects.select_for_update().get(id=credential_id)
        credential.apply_tokens(tokens)
        credential.token_version = F("token_version") + 1
        credential.refresh_lock_until = None
        credential.last_refresh_at = now
        if credential.status == Credential.Status.NEEDS_RELOGIN:
            credential.status, credential.status_reason = Credential.Status.ACTIVE, ""
        credential.save()
    return Credential.objects.get(id=credential_id)


def note_identity(credential_id: int, tokens: TokenSet) -> Credential:
    """Fill in the email, account id and plan a credential lacks (what a profile lookup found)."""
    credential = Credential.objects.get(id=credential_id)
    found = {"email": tokens.email, "account_id": tokens.account_id, "plan": tokens.plan}
    missing = {field: value for field, value in found.items() if value and not getattr(credential, field)}
    if missing:
        Credential.objects.filter(id=credential_id).update(**missing)
        credential.refresh_from_db()
    return credential


def load(credential_id: int) -> Credential:
    return Credential.objects.get(id=credential_id)


def mark_needs_relogin(credential_id: int, reason: str) -> None:
    Credential.objects.filter(id=credential_id).update(
        status=Credential.Status.NEEDS_RELOGIN, status_reason=reason[:300], refresh_lock_until=None,
        last_error=reason[:500], last_error_at=timezone.now(),
    )
    alerts.credential_needs_relogin(credential_id, reason)  # once per episode, sent off this thread


def disable(credential_id: int, reason: str) -> None:
    Credential.objects.filter(id=credential_id).update(
        status=Credential.Status.DISABLED, status_reason=reason[:300], last_error=reason[:500],
        last_error_at=timezone.now(),
    )


def start_cooldown(credential_id: int, until: datetime, reason: str) -> None:
    """Cool a credential down; never shortens a longer cooldown another process set."""
    Credential.objects.filter(
        Q(cooldown_until__isnull=True) | Q(cooldown_until__lt=until), id=credential_id
    ).update(cooldown_until=until, cooldown_reason=reason[:200], last_error=reason[:500], last_error_at=timezone.now())


def note_success(credential_id: int, windows: dict | None) -> None:
    """Note a served request and merge the windows its headers reported into the stored ones.

    Merged, not replaced: the usage-endpoint poll also stores windows headers never
    carry (model-scoped weekly ones); the row lock keeps a concurrent poll's write.
    """
    now = timezone.now()
    if not windows:
        Credential.objects.filter(id=credential_id).update(last_used_at=now)
        return
    with transaction.atomic():
        stored = Credential.objects.select_for_update().filter(id=credential_id).values_list("windows", flat=True)
        merged = window_state.merge(stored.first(), windows)
        Credential.objects.filter(id=credential_id).update(last_used_at=now, windows=merged)


def usable(provider: str) -> list[Credential]:
    """Active credentials of ``provider`` (cooling ones included: the pool skips them by time)."""
    return list(Credential.objects.filter(provider=provider, status=Credential.Status.ACTIVE).order_by("-priority", "id"))


def connected_count(provider: str) -> int:
    return Credential.objects.filter(provider=provider).exclude(status=Credential.Status.DISABLED).count()


class StaleTokensError(Exception):
    """An imported token file is not newer than what ProxyHub holds; nothing was changed.

    ``reason`` is safe to show: it names times, never a token.
    """

    def __init__(self, credential: Credential, reason: str) -> None:
        super().__init__(reason)
        self.credential = credential
        self.reason = reason


def upsert(provider: str, tokens: TokenSet, *, label: str = "", only_if_newer: bool = False) -> tuple[Credential, bool]:
    """Save a login or an imported token file; an account seen before is updated, keeping its history.

    With ``only_if_newer`` (token files), a known account whose stored tokens are
    as new or newer is left alone and StaleTokensError is raised (credentials.freshness).
    """
    match = Q(provider=provider)
    if tokens.account_id:
        match &= Q(account_id=tokens.account_id)
    elif tokens.email:
        match &= Q(email=tokens.email)
    else:
        match &= Q(pk__in=[])
    with transaction.atomic():
        credential = Credential.objects.select_for_update().filter(match).first()
        created = credential is None
        if credential is not None and only_if_newer and (stale := freshness.compare(credential, tokens)):
            raise StaleTokensError(credential, stale.reason)
        credential = credential or Credential(provider=provider)
        credential.apply_tokens(tokens)
        credential.label = label or credential.label or tokens.email
        credential.status, credential.status_reason = Credential.Status.ACTIVE, ""
        credential.cooldown_until = None
        if not created:
            credential.token_version = F("token_version") + 1
        credential.save()
    credential.refresh_from_db()
    return credential, created


def due_for_refresh(margin_seconds: int) -> list[Credential]:
    """Active credentials whose access token expires within ``margin_seconds``."""
    horizon = timezone.now() + timedelta(seconds=margin_seconds)
    return list(Credential.objects.filter(status=Credential.Status.ACTIVE, expires_at__lte=horizon)
                .exclude(refresh_token=""))
