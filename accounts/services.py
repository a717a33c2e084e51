"""Issuing, checking and revoking API keys. The ONE key check is authenticate_api_key()."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from accounts import keys
from accounts.client_configs import ModelInfo
from accounts.models import ApiKey
from credentials.models import Model


def digest(raw_key: str) -> str:
    return keys.digest_key(raw_key, settings.SECRET_KEY)


def issue_key(user: AbstractBaseUser, *, name: str = "default", allowed_models: list[str] | None = None,
              expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key; the raw key is returned once and never stored."""
    raw = keys.generate_key()
    api_key = ApiKey.objects.create(
        user=user, name=name, prefix=keys.visible_prefix(raw), digest=digest(raw),
        allowed_models=allowed_models or [], expires_at=expires_at,
    )
    return api_key, raw


def issue_key_for_username(username: str, **kwargs: object) -> tuple[ApiKey, str, bool]:
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save()
    api_key, raw = issue_key(user, **kwargs)  # type: ignore[arg-type]
    return api_key, raw, created


@dataclass(frozen=True)
class KeyCheck:
    """What checking a raw key found: the active key, or why it was refused.

    ``refusal``: "" (accepted), "missing", "unknown", "revoked", "expired" or "user_inactive";
    ``since`` is when a known key was revoked or expired. Only the holder of the key itself
    learns the reason, so telling it gives nothing away.
    """

    api_key: ApiKey | None
    refusal: str = ""
    since: datetime | None = None


def check_api_key(raw_key: str) -> KeyCheck:
    """authenticate_api_key(), and why a key was refused."""
    if not raw_key:
        return KeyCheck(None, "missing")
    if len(raw_key) > 200:
        return KeyCheck(None, "unknown")
    api_key = ApiKey.objects.select_related("user").filter(digest=digest(raw_key)).first()
    if api_key is None or not keys.digests_match(api_key.digest, digest(raw_key)):
        return KeyCheck(None, "unknown")
    if api_key.revoked_at is not None:
        return KeyCheck(None, "revoked", api_key.revoked_at)
    if not api_key.is_active(timezone.now()):
        return KeyCheck(None, "expired", api_key.expires_at)
    if not api_key.user.is_active:
        return KeyCheck(None, "user_inactive")
    return KeyCheck(api_key)


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key`` (with its user loaded), or None (check_api_key() says why)."""
    return check_api_key(raw_key).api_key


def revoke_key(prefix: str) -> int:
    """Revoke every unrevoked key starting with ``prefix``; returns how many."""
    count = 0
    for api_key in ApiKey.objects.filter(prefix__startswith=prefix[:16], revoked_at__isnull=True):
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])  # save() so the gateway's cache hears of it
        count += 1
    return count


def touch_last_used(used: dict[int, datetime]) -> None:
    for key_id, at in used.items():
        ApiKey.objects.filter(id=key_id).update(last_used_at=at)


def public_base_url() -> str:
    """The address teammates reach the server at (PROXYHUB_PUBLIC_URL, else host and port)."""
    configured = getattr(settings, "PROXYHUB_PUBLIC_URL", "")
    return configured or f"http://{settings.PROXYHUB_HOST}:{settings.PROXYHUB_PORT}"


def config_models(api_key: ApiKey) -> list[ModelInfo]:
    """The enabled catalog models this key may use, for client configs."""
    return [
        ModelInfo(m.name, m.display_name or m.name, m.provider, m.max_output_tokens)
        for m in Model.objects.filter(enabled=True).order_by("provider", "name")
        if api_key.allows(m.name)
    ]
