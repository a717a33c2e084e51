"""Connecting an upstream account: the OAuth paste flow and token-file upload.

Used by the admin wizard (credentials.views) and ``manage.py login``; both stay
thin and only show what these functions return or raise.

    start(provider)                 -> PendingLogin (PKCE verifier + state, kept server-side)
    authorize_url(pending)          -> the provider's login page for the admin to open
    finish(pending_id, pasted, ...) -> Connected(credential, created), or raises:

    ConnectError                  message is safe to show: it never holds a token or the pasted code
     ├── LoginExpiredError             unknown, finished or older than 15 min: start again
     ├── PasteError               nothing usable pasted, or the state is not this login's: paste again
     └── ExchangeError            the token endpoint refused the code (``permanent``,
                                  e.g. invalid_grant) or could not be reached: nothing saved

A failed finish() saves nothing and leaves the pending login in place until
it expires, so the admin can paste again (codes are single-use, so after a
refused code: approve again from the same link) or start over.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials import audit, services
from credentials.importers import ImportFormatError, parse_token_file
from credentials.models import Credential, PendingLogin, Provider
from credentials.oauth import OAuthError, PermanentOAuthError, Pkce, TokenSet
from credentials.oauth import claude as claude_oauth
from credentials.oauth import codex as codex_oauth

logger = logging.getLogger(__name__)

MAX_TOKEN_FILE_BYTES = 256 * 1024
EXCHANGE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Flow:
    """What differs between providers in the paste flow."""

    provider: str
    name: str  # shown to the admin: "Claude", "ChatGPT"
    authorize_url: Callable[[Pkce], str]
    parse_pasted: Callable[[str, str], str]
    exchange_code: Callable[[httpx.AsyncClient, str, Pkce], Awaitable[TokenSet]]
    instructions: str
    paste_label: str


FLOWS: dict[str, Flow] = {
    Provider.CLAUDE: Flow(
        Provider.CLAUDE, "Claude", claude_oauth.authorize_url, claude_oauth.parse_pasted, claude_oauth.exchange_code,
        instructions=("Open the link and log in to the Claude account (Pro or Max) you want to add, then "
                      "approve access. The page you land on shows a code of the form code#state: copy all of it."),
        paste_label="Code (code#state)",
    ),
    Provider.CODEX: Flow(
        Provider.CODEX, "ChatGPT", codex_oauth.authorize_url, codex_oauth.parse_pasted, codex_oauth.exchange_code,
        instructions=("Open the link and log in to the ChatGPT account you want to add, then approve access. "
                      "Your browser ends on a page that does not load (http://localhost:1455/auth/callback?...): "
                      "that is expected. Copy the whole address from the address bar."),
        paste_label="Address (http://localhost:1455/auth/callback?code=...)",
    ),
}


class ConnectError(Exception):
    """A login that could not be completed; ``message`` is safe to show to the admin."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider


class LoginExpiredError(ConnectError):
    pass


class PasteError(ConnectError):
    pass


class ExchangeError(ConnectError):
    def __init__(self, message: str, *, provider: str = "", permanent: bool = False) -> None:
        super().__init__(message, provider=provider)
        self.permanent = permanent


@dataclass(frozen=True)
class Connected:
    credential: Credential
    created: bool
    skipped: str = ""  # why an imported file changed nothing (older than the stored tokens), else ""


def _now() -> datetime:
    # A seam for tests (the way django.contrib.auth.tokens mocks its clock).
    return timezone.now()


def flow(provider: str) -> Flow:
    """The flow for ``provider``; raises ConnectError for an unknown one."""
    try:
        return FLOWS[provider]
    except KeyError:
        raise ConnectError(f"Unknown provider {provider!r}; use one of: {', '.join(FLOWS)}.") from None


def start(provider: str, *, user: Any = None) -> PendingLogin:
    """Begin a login: a new PKCE verifier and random state, stored for PendingLogin.LIFETIME."""
    flow(provider)
    now = _now()
    PendingLogin.objects.filter(expires_at__lte=now).delete()
    pkce = Pkce.new()
    return PendingLogin.objects.create(
        provider=provider, state=pkce.state, verifier=pkce.verifier, started_by=user,
        created_at=now, expires_at=now + PendingLogin.LIFETIME,
    )


def pkce(pending: PendingLogin) -> Pkce:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest()).rstrip(b"=").decode()
    return Pkce(pending.verifier, challenge, pending.state)


def authorize_url(pending: PendingLogin) -> str:
    return FLOWS[pending.provider].authorize_url(pkce(pending))


def pending_login(pending_id: UUID | str, *, user: Any = None) -> PendingLogin:
    """The live pending login ``pending_id`` (started by ``user`` when given); raises LoginExpiredError."""
    query = PendingLogin.objects.filter(pk=pending_id)
    if user is not None:
        query = query.filter(started_by=user)
    pending = query.first()
    if pending is None:
        raise LoginExpiredError("This login is finished or no longer exists. Start the connection again.")
    minutes = int(PendingLogin.LIFETIME.total_seconds() // 60)
    if pending.is_expired(_now()):
        raise LoginExpiredError(f"This login expired: a login must be completed within {minutes} minutes. "
                           "Start the connection again.", provider=pending.provider)
    return pending


@sensitive_variables("pasted", "code")
def finish(pending_id: UUID | str, pasted: str, *, label: str = "", user: Any = None) -> Connected:
    """Exchange the pasted code and save the account; see the module docstring for errors."""
    pending = pending_login(pending_id, user=user)
    provider_flow = FLOWS[pending.provider]
    try:
        code = provider_flow.parse_pasted(pasted, pending.state)
    except OAuthError as exc:
        raise PasteError(exc.message, provider=pending.provider) from None
    tokens = _exchange(provider_flow, code, pkce(pending))
    with transaction.atomic(), audit.operation("credential.connected"):
        PendingLogin.objects.filter(pk=pending.pk).delete()
        credential, created = services.upsert(pending.provider, tokens, label=label.strip())
    logger.info("%s %s credential #%s", "connected" if created else "updated", pending.provider, credential.pk)
    return Connected(credential, created)


def cancel(pending: PendingLogin) -> None:
    PendingLogin.objects.filter(pk=pending.pk).delete()


@sensitive_variables("code")
def _exchange(provider_flow: Flow, code: str, login_pkce: Pkce) -> TokenSet:
    try:
        return async_to_sync(_aexchange)(provider_flow, code, login_pkce)
    except PermanentOAuthError as exc:
        raise ExchangeError(
            f"{provider_flow.name} refused the code ({exc.message}). Codes work once and only for a short "
            "time: open the link again, approve, and paste the new code — or start again.",
            provider=provider_flow.provider, permanent=True,
        ) from None
    except OAuthError as exc:
        raise ExchangeError(
            f"Could not complete the login with {provider_flow.name}'s token endpoint ({exc.message}). "
            "Nothing was saved; try again in a moment.", provider=provider_flow.provider,
        ) from None


async def _aexchange(provider_flow: Flow, code: str, login_pkce: Pkce) -> TokenSet:
    # A client for this one call: the wizard is rare and runs outside the gateway's loop.
    timeout = httpx.Timeout(EXCHANGE_TIMEOUT, connect=settings.PROXYHUB_CONNECT_TIMEOUT)
    async with httpx.AsyncClient(timeout=timeout) as client:
        return await provider_flow.exchange_code(client, code, login_pkce)


def import_token_file(content: bytes, *, label: str = "") -> Connected:
    """Save the account in one uploaded token file (formats of parse_token_file).

    A file no newer than the tokens ProxyHub holds for that account (typically
    one ProxyHub has refreshed since) changes nothing: the result's ``skipped``
    says why. Raises ImportFormatError with a message that never quotes the file.
    """
    if len(content) > MAX_TOKEN_FILE_BYTES:
        raise ImportFormatError(f"larger than {MAX_TOKEN_FILE_BYTES // 1024} KiB; not a token file")
    try:
        data = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        # JSONDecodeError messages are positional only, but say nothing at all to be sure.
        raise ImportFormatError("not a JSON file") from None
    provider, tokens = parse_token_file(data)
    if provider == Provider.CLAUDE:
        tokens = claude_oauth.identify(tokens)
    try:
        with audit.operation("credential.imported"):
            credential, created = services.upsert(provider, tokens, label=label.strip(), only_if_newer=True)
    except services.StaleTokensError as exc:
        logger.info("skipped importing %s credential #%s: older tokens", provider, exc.credential.pk)
        audit.record("credential.import_skipped", target=exc.credential, reason=exc.reason)
        return Connected(exc.credential, False, skipped=exc.reason)
    return Connected(credential, created)


def describe(credential: Credential) -> str:
    """One line about a saved account, no secrets: who, which account, plan, expiry."""
    who = credential.email or credential.account_id or f"credential #{credential.pk}"
    parts = [FLOWS[credential.provider].name if credential.provider in FLOWS else credential.provider]
    if credential.account_id and credential.account_id != who:
        parts.append(f"account {credential.account_id}")
    parts.append(f"plan {credential.plan}" if credential.plan else "plan unknown")
    if credential.expires_at:
        parts.append(f"token expires {credential.expires_at:%Y-%m-%d %H:%M} UTC")
    return f"{who} ({', '.join(parts)})"
