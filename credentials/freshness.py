"""Which of two token sets for one account is newer: never let an old token file win.

Refresh tokens are single-use. Once ProxyHub has refreshed an account, the
token file it was imported from holds a spent refresh token; importing that
file again would put it back, and the next refresh fails (``invalid_grant`` /
``refresh_token_reused``) and the account needs a new login. So an import is
compared with what is stored, by issue time when both access tokens are JWTs
that carry ``iat`` (ChatGPT), else by expiry (Claude's tokens are opaque, but
every Claude token file states an expiry). A file whose age cannot be told is
imported, as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from credentials.models import Credential
from credentials.oauth import TokenSet, jwt_claims


@dataclass(frozen=True)
class Stale:
    """Why an import was skipped; ``reason`` names times only, never a token."""

    reason: str


def issued_at(access_token: str) -> datetime | None:
    """The ``iat`` claim of a JWT access token, or None for opaque tokens."""
    iat = jwt_claims(access_token).get("iat") if access_token.count(".") == 2 else None
    if isinstance(iat, (int, float)) and not isinstance(iat, bool):
        return datetime.fromtimestamp(iat, tz=dt_timezone.utc)
    return None


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value else "unknown"


def compare(stored: Credential, incoming: TokenSet) -> Stale | None:
    """A Stale reason when ``incoming`` is not newer than ``stored``'s tokens, else None."""
    if stored.access_token and incoming.access_token == stored.access_token and (
            not incoming.refresh_token or incoming.refresh_token == stored.refresh_token):
        return Stale("ProxyHub already holds these exact tokens; nothing to update")
    old_iat, new_iat = issued_at(stored.access_token), issued_at(incoming.access_token)
    if old_iat and new_iat and new_iat != old_iat:  # same second: let the expiries decide
        if new_iat < old_iat:
            return Stale(f"the file's tokens were issued {_when(new_iat)}, before the ones ProxyHub holds "
                         f"(issued {_when(old_iat)}, after a refresh); importing it would replace newer tokens "
                         "with older ones whose refresh token is already spent")
        return None
    if stored.expires_at and incoming.expires_at and incoming.expires_at < stored.expires_at:
        return Stale(f"the file's token expires {_when(incoming.expires_at)}, before the one ProxyHub holds "
                     f"(expires {_when(stored.expires_at)}, after a refresh); importing it would replace newer "
                     "tokens with older ones whose refresh token is already spent")
    return None
