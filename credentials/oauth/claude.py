"""Claude Code OAuth (PROTOCOLS.md §4.1-§4.5): JSON grants, rotating refresh tokens."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils import timezone

from credentials.oauth import (
    OAuthError, PermanentOAuthError, Pkce, TokenSet, TransientOAuthError, post_token_request,
)

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
AUTHORIZE_URL = "https://claude.ai/oauth/authorize"
REDIRECT_URI = "https://platform.claude.com/oauth/code/callback"
SCOPES = "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"


def authorize_url(pkce: Pkce) -> str:
    query = {
        "code": "true", "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT_URI,
        "scope": SCOPES, "code_challenge": pkce.challenge, "code_challenge_method": "S256", "state": pkce.state,
    }
    return f"{AUTHORIZE_URL}?{urlencode(query)}"


def parse_pasted(value: str, expected_state: str) -> str:
    """The code from a pasted ``code#state`` or full callback URL; raises OAuthError on a state mismatch."""
    value = value.strip()
    if value.startswith("http"):
        parsed = urlparse(value)
        query = parse_qs(parsed.query)
        code = (query.get("code") or [""])[0]
        state = (query.get("state") or parse_qs(parsed.fragment).get("state") or [expected_state])[0]
    else:
        code, _, state = value.partition("#")
        state = state or expected_state
    if not code:
        raise OAuthError("No authorization code found in what was pasted.")
    if state != expected_state:
        raise OAuthError("The state does not match this login; start the connection again.")
    return code


async def exchange_code(client: httpx.AsyncClient, code: str, pkce: Pkce) -> TokenSet:
    payload = {
        "grant_type": "authorization_code", "code": code, "state": pkce.state, "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI, "code_verifier": pkce.verifier,
    }
    return await with_profile(client, _token_set(await _post(client, payload), previous_refresh=""))


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> TokenSet:
    payload = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}
    # No profile call here: a refresh can sit on a request's path, and the plan rarely changes.
    return _token_set(await _post(client, payload), previous_refresh=refresh_token)


async def with_profile(client: httpx.AsyncClient, tokens: TokenSet) -> TokenSet:
    """Fill in the plan (and any missing account) from the profile endpoint, best effort.

    The token response names no plan and may omit the account (PROTOCOLS.md §4.4);
    a profile failure must never fail a login.
    """
    profile = await fetch_profile(client, tokens.access_token)
    account = profile.get("account") if isinstance(profile.get("account"), dict) else {}
    tokens.email = tokens.email or str(account.get("email") or account.get("email_address") or "")
    tokens.account_id = tokens.account_id or str(account.get("uuid") or "")
    tokens.plan = plan_from_profile(profile) or tokens.plan
    return tokens


def identify(tokens: TokenSet) -> TokenSet:
    """Fill in what a token file left out from the profile endpoint (sync, best effort).

    Claude Code's .credentials.json names no account: without this, every import
    of it would be a new credential instead of an update of the known account.
    """
    if tokens.email and tokens.account_id and tokens.plan:
        return tokens

    async def ask() -> TokenSet:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), trust_env=False) as client:
            return await with_profile(client, tokens)

    return async_to_sync(ask)()


async def fetch_profile(client: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    """``GET /api/oauth/profile`` for this token, or {} when it cannot be had."""
    url = settings.PROXYHUB_CLAUDE_BASE_URL.rstrip("/") + "/api/oauth/profile"
    headers = {"authorization": f"Bearer {access_token}", "anthropic-beta": "oauth-2025-04-20",
               "accept": "application/json"}
    try:
        response = await client.get(url, headers=headers, timeout=10)
        data = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def plan_from_profile(profile: dict[str, Any]) -> str:
    """``max`` / ``pro`` from the account flags (max wins), else the organisation type (``claude_team`` → ``team``)."""
    account = profile.get("account") if isinstance(profile.get("account"), dict) else {}
    if account.get("has_claude_max"):
        return "max"
    if account.get("has_claude_pro"):
        return "pro"
    organization = profile.get("organization") if isinstance(profile.get("organization"), dict) else {}
    kind = str(organization.get("organization_type") or "")
    return kind.removeprefix("claude_")


async def _post(client: httpx.AsyncClient, payload: dict[str, str]) -> dict[str, Any]:
    try:
        status, data = await post_token_request(client, settings.PROXYHUB_CLAUDE_TOKEN_URL, json=payload)
    except TransientOAuthError:
        status, data = 0, None
    fallback = settings.PROXYHUB_CLAUDE_TOKEN_FALLBACK_URL
    if fallback and _blocked(status, data):
        # The primary host is unreachable or answered a non-OAuth page (a bot challenge):
        # the same endpoint also lives on the API host (PROTOCOLS.md §4.1).
        status, data = await post_token_request(client, fallback, json=payload)
    if status == 0:
        raise TransientOAuthError("token endpoint unreachable")
    if status == 200 and isinstance(data, dict) and data.get("access_token"):
        return data
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    description = str(data.get("error_description", "")) if isinstance(data, dict) else ""
    message = f"token endpoint answered {status} {code} {description}".strip()
    if code == "invalid_grant" or status in (400, 401, 403) and code:
        raise PermanentOAuthError(message, code=code, status=status)
    raise TransientOAuthError(message, code=code, status=status)


def _blocked(status: int, data: Any) -> bool:
    """No answer, or one that is not from the OAuth server (no JSON body at all)."""
    return status == 0 or (status >= 403 and not data)


def _token_set(data: dict[str, Any], previous_refresh: str) -> TokenSet:
    account = data.get("account") or {}
    expires_in = int(data.get("expires_in") or 3600)
    return TokenSet(
        access_token=data["access_token"],
        refresh_token=data.get("refresh_token") or previous_refresh,
        expires_at=timezone.now() + timedelta(seconds=expires_in),
        email=account.get("email_address") or account.get("email") or "",
        account_id=account.get("uuid") or "",
    )
