"""OAuth state of both fake providers: issued tokens, pending codes, rotation.

Thread-safe: tests in the main thread issue and expire tokens while the fake
servers' loop thread checks them.  Every public method takes the lock once
and never awaits.

Tokens carry no secrets worth hiding (they are made up here), but they are
still never logged or printed, so test output looks like production output.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

CLAUDE_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
CLAUDE_SCOPE = "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
CODEX_SCOPE = "openid profile email offline_access"
AUTH_CLAIM = "https://api.openai.com/auth"
CODEX_EXPIRES_IN = 864000  # ChatGPT access tokens last about ten days


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to; refreshed tokens keep the same identity."""

    provider: str  # "claude" | "codex"
    email: str
    account_id: str  # Claude account uuid, or ChatGPT account id
    plan: str = "max"
    expires_in: int = 28800


@dataclass(frozen=True)
class AccessGrant:
    identity: Identity
    expires_at: float


@dataclass
class _PendingCode:
    identity: Identity
    code_challenge: str
    state: str
    redirect_uri: str


class TokenError(Exception):
    """A refused grant; ``reason`` is one of the REASONS below."""

    REASONS = ("unknown_code", "pkce", "redirect_uri", "state", "reused", "unknown", "expired")

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def stable_uuid(kind: str, email: str) -> str:
    """The same email always maps to the same account, as a re-login does."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{email}"))


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT with ``alg: none``: gateways only read claims, never verify."""

    def part(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def jwt_claims(token: str) -> dict[str, Any]:
    """Decode a JWT payload without verifying it (for tests)."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))  # type: ignore[no-any-return]


class TokenRegistry:
    """Issues, checks, rotates and expires tokens for both providers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._access: dict[str, AccessGrant] = {}
        self._refresh: dict[str, Identity] = {}  # current refresh tokens
        self._spent: set[str] = set()  # rotated-away refresh tokens
        self._expired_refresh: set[str] = set()
        self._codes: dict[str, _PendingCode] = {}

    # --- issuing ---------------------------------------------------------

    def issue(self, identity: Identity) -> dict[str, Any]:
        """Register a fresh token set and return the token endpoint's body."""
        with self._lock:
            return self._issue_locked(identity)

    def _issue_locked(self, identity: Identity) -> dict[str, Any]:
        expires_at = time.time() + identity.expires_in
        if identity.provider == "claude":
            access = "sk-ant-oat01-" + secrets.token_urlsafe(48)
            refresh = "sk-ant-ort01-" + secrets.token_urlsafe(48)
            body = _claude_body(identity, access, refresh)
        else:
            access = unsigned_jwt(_codex_access_claims(identity, expires_at))
            refresh = "rt_" + secrets.token_urlsafe(48)
            body = _codex_body(identity, access, refresh, expires_at)
        self._access[access] = AccessGrant(identity, expires_at)
        self._refresh[refresh] = identity
        return body

    def authorize(self, identity: Identity, *, code_challenge: str, state: str, redirect_uri: str) -> str:
        """Simulate the user approving on the provider's page; returns the code."""
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _PendingCode(identity, code_challenge, state, redirect_uri)
        return code

    # --- grants ----------------------------------------------------------

    def exchange_code(
        self, provider: str, *, code: str, verifier: str, redirect_uri: str, state: str | None = None
    ) -> dict[str, Any]:
        """authorization_code grant; codes are single-use.  Raises TokenError."""
        with self._lock:
            pending = self._codes.get(code)
            if pending is None or pending.identity.provider != provider:
                raise TokenError("unknown_code")
            if pkce_challenge(verifier) != pending.code_challenge:
                raise TokenError("pkce")
            if redirect_uri != pending.redirect_uri:
                raise TokenError("redirect_uri")
            if state is not None and state != pending.state:
                raise TokenError("state")
            del self._codes[code]
            return self._issue_locked(pending.identity)

    def refresh(self, provider: str, refresh_token: str) -> dict[str, Any]:
        """refresh_token grant: the old refresh token dies (rotation).  Raises TokenError."""
        with self._lock:
            if refresh_token in self._spent:
                raise TokenError("reused")
            if refresh_token in self._expired_refresh:
                raise TokenError("expired")
            identity = self._refresh.get(refresh_token)
            if identity is None or identity.provider != provider:
                raise TokenError("unknown")
            del self._refresh[refresh_token]
            self._spent.add(refresh_token)
            return self._issue_locked(identity)

    # --- checks and control ----------------------------------------------

    def valid_access(self, token: str | None) -> AccessGrant | None:
        """The grant for a live access token, or None if unknown or expired."""
        if token is None:
            return None
        with self._lock:
            grant = self._access.get(token)
        if grant is None or grant.expires_at <= time.time():
            return None
        return grant

    def expire_access(self, token: str) -> None:
        with self._lock:
            grant = self._access.get(token)
            if grant is None:
                raise KeyError("not an access token issued by the fakes")
            self._access[token] = replace(grant, expires_at=0.0)

    def expire_refresh(self, token: str) -> None:
        with self._lock:
            if token not in self._refresh:
                raise KeyError("not a live refresh token issued by the fakes")
            del self._refresh[token]
            self._expired_refresh.add(token)


def _claude_body(identity: Identity, access: str, refresh: str) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": identity.expires_in,
        "scope": CLAUDE_SCOPE,
        "organization": {"uuid": stable_uuid("org", identity.email), "name": "Fake Org"},
        "account": {"uuid": identity.account_id, "email_address": identity.email},
    }


def _auth_claim(identity: Identity) -> dict[str, Any]:
    user_id = "user-" + stable_uuid("user", identity.email).replace("-", "")[:24]
    return {
        "chatgpt_account_id": identity.account_id,
        "chatgpt_plan_type": identity.plan,
        "chatgpt_user_id": user_id,
        "user_id": user_id,
    }


def _codex_access_claims(identity: Identity, expires_at: float) -> dict[str, Any]:
    return {
        "iss": "https://auth.openai.com",
        "aud": ["https://api.openai.com/v1"],
        "exp": int(expires_at),
        "iat": int(time.time()),
        "jti": secrets.token_hex(8),  # keeps every access token distinct
        "scp": CODEX_SCOPE.split(),
        AUTH_CLAIM: _auth_claim(identity),
    }


def _codex_body(identity: Identity, access: str, refresh: str, expires_at: float) -> dict[str, Any]:
    id_claims = {
        "iss": "https://auth.openai.com",
        "aud": [CODEX_CLIENT_ID],
        "email": identity.email,
        "email_verified": True,
        "exp": int(expires_at),
        "iat": int(time.time()),
        AUTH_CLAIM: _auth_claim(identity),
    }
    return {
        "id_token": unsigned_jwt(id_claims),
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": identity.expires_in,
        "scope": CODEX_SCOPE,
    }
