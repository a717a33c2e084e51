"""OAuth flows per provider: PKCE authorize URL, code exchange, refresh.

    OAuthError                 (message, code, status)
     ├── PermanentOAuthError   invalid_grant, refresh_token_expired / _invalidated: needs re-login
     └── TransientOAuthError   network, 5xx, 429: try again later
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx


class OAuthError(Exception):
    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class PermanentOAuthError(OAuthError):
    pass


class TransientOAuthError(OAuthError):
    pass


@dataclass
class TokenSet:
    """What a token endpoint (or an imported token file) tells us about an account."""

    access_token: str
    refresh_token: str = ""
    id_token: str = ""
    expires_at: datetime | None = None
    email: str = ""
    account_id: str = ""
    plan: str = ""


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str
    state: str

    @classmethod
    def new(cls) -> "Pkce":
        verifier = _b64url(secrets.token_bytes(32))
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        return cls(verifier, challenge, _b64url(secrets.token_bytes(32)))


async def post_token_request(client: "httpx.AsyncClient", url: str, **kwargs: Any) -> tuple[int, Any]:
    """POST to a token endpoint: (status, parsed JSON or {}). Network failures are transient errors."""
    try:
        response = await client.post(url, headers={"accept": "application/json"}, **kwargs)
    except httpx.HTTPError as exc:
        raise TransientOAuthError(f"token endpoint unreachable ({type(exc).__name__})") from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (we only read our own account's claims)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError):
        return {}
