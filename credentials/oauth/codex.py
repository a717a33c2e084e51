"""OpenAI (ChatGPT Codex) OAuth (PROTOCOLS.md §5.1-§5.4): form exchange, single-use refresh tokens."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
from django.conf import settings
from django.utils import timezone

from credentials.oauth import (
    OAuthError, PermanentOAuthError, Pkce, TokenSet, TransientOAuthError, jwt_claims, post_token_request,
)

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTHORIZE_URL = "https://auth.openai.com/oauth/authorize"
REDIRECT_URI = "http://localhost:1455/auth/callback"
SCOPES = "openid profile email offline_access"
AUTH_CLAIM = "https://api.openai.com/auth"
PERMANENT_CODES = {"refresh_token_expired", "refresh_token_invalidated", "refresh_token_reused", "invalid_grant"}


def authorize_url(pkce: Pkce) -> str:
    query = {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": SCOPES,
        "code_challenge": pkce.challenge, "code_challenge_method": "S256", "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true", "state": pkce.state, "originator": "codex_cli_rs",
    }
    return f"{AUTHORIZE_URL}?{urlencode(query)}"


def parse_pasted(value: str, expected_state: str) -> str:
    """The code from the pasted ``http://localhost:1455/auth/callback?code=...&state=...`` address."""
    query = parse_qs(urlparse(value.strip()).query)
    if "error" in query:
        raise OAuthError(f"The provider refused the login: {query['error'][0]}")
    code = (query.get("code") or [""])[0]
    if not code:
        raise OAuthError("No code found: paste the whole address from the browser's address bar.")
    if (query.get("state") or [""])[0] != expected_state:
        raise OAuthError("The state does not match this login; start the connection again.")
    return code


async def exchange_code(client: httpx.AsyncClient, code: str, pkce: Pkce) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID, "code_verifier": pkce.verifier}
    return token_set(await _post(client, form), previous=None)


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> TokenSet:
    form = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh_token,
            "scope": "openid profile email"}
    return token_set(await _post(client, form), previous=TokenSet("", refresh_token))


async def _post(client: httpx.AsyncClient, form: dict[str, str]) -> dict[str, Any]:
    status, data = await post_token_request(client, settings.PROXYHUB_CODEX_TOKEN_URL, data=form)
    if status == 200 and isinstance(data, dict):
        return data
    code, message = _error_code(data)
    text = f"token endpoint answered {status} {code} {message}".strip()
    if code in PERMANENT_CODES or status == 401:
        raise PermanentOAuthError(text, code=code, status=status)
    raise TransientOAuthError(text, code=code, status=status)


def _error_code(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        return "", ""
    err = data.get("error")
    if isinstance(err, dict):
        return str(err.get("code") or err.get("type") or ""), str(err.get("message") or "")
    return str(err or ""), str(data.get("error_description") or "")


def token_set(data: dict[str, Any], previous: TokenSet | None) -> TokenSet:
    """Build a TokenSet; every response field is optional, missing ones keep ``previous`` values."""
    previous = previous or TokenSet("")
    id_token = data.get("id_token") or previous.id_token
    access = data.get("access_token") or previous.access_token
    claims = jwt_claims(id_token)
    auth = claims.get(AUTH_CLAIM) or jwt_claims(access).get(AUTH_CLAIM) or {}
    expires_at = _expiry(data.get("expires_in"), access)
    return TokenSet(
        access_token=access,
        refresh_token=data.get("refresh_token") or previous.refresh_token,
        id_token=id_token,
        expires_at=expires_at,
        email=claims.get("email") or (claims.get("https://api.openai.com/profile") or {}).get("email") or previous.email,
        account_id=auth.get("chatgpt_account_id") or data.get("account_id") or previous.account_id,
        plan=auth.get("chatgpt_plan_type") or previous.plan,
    )


def _expiry(expires_in: Any, access_token: str) -> datetime | None:
    if expires_in:
        return timezone.now() + timedelta(seconds=int(expires_in))
    exp = jwt_claims(access_token).get("exp")
    return datetime.fromtimestamp(int(exp), tz=dt_timezone.utc) if exp else None
