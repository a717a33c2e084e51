"""Token refresh, single-flight per credential within and across processes.

Within a process an asyncio.Lock per credential collapses concurrent callers.
Across processes, claim_refresh() is a compare-and-swap on token_version: the
winner calls the token endpoint; the others poll until the version moves and
use the token the winner saved (refresh tokens are single-use).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import httpx
from asgiref.sync import async_to_sync, sync_to_async

from credentials import services
from credentials.models import Credential, Provider
from credentials.oauth import OAuthError, PermanentOAuthError, TokenSet
from credentials.oauth import claude as claude_oauth
from credentials.oauth import codex as codex_oauth

logger = logging.getLogger(__name__)

REFRESHERS: dict[str, Callable[[httpx.AsyncClient, str], Awaitable[TokenSet]]] = {
    Provider.CLAUDE: claude_oauth.refresh,
    Provider.CODEX: codex_oauth.refresh,
}
WAIT_STEP = 0.1

_locks: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Lock] = {}
_clients: dict[tuple[asyncio.AbstractEventLoop, str], httpx.AsyncClient] = {}


def token_client(proxy_url: str = "") -> httpx.AsyncClient:
    """The token-endpoint client of this event loop, through the credential's proxy if it has one."""
    key = (asyncio.get_running_loop(), proxy_url)
    client = _clients.get(key)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=10.0), proxy=proxy_url or None,
                                   trust_env=False)
        _clients[key] = client
    return client


async def aclose_client() -> None:
    loop = asyncio.get_running_loop()
    for key in [k for k in _clients if k[0] is loop]:
        await _clients.pop(key).aclose()


class RefreshError(Exception):
    """The credential could not be refreshed; ``permanent`` means it needs re-login."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


async def arefresh(credential: Credential, *, seen_version: int | None = None,
                   client: httpx.AsyncClient | None = None) -> Credential:
    """Return ``credential`` with a token newer than ``seen_version`` (default: its current one)."""
    version = credential.token_version if seen_version is None else seen_version
    lock = _locks.setdefault((asyncio.get_running_loop(), credential.pk), asyncio.Lock())
    async with lock:
        fresh = await sync_to_async(services.load)(credential.pk)
        if fresh.token_version != version:
            return fresh  # someone refreshed while we waited for the lock
        return await _refresh_or_wait(fresh, version, client or token_client(fresh.proxy_url))


async def _refresh_or_wait(credential: Credential, version: int, client: httpx.AsyncClient) -> Credential:
    if await sync_to_async(services.claim_refresh)(credential.pk, version):
        return await _refresh_claimed(credential, client)
    return await _wait_for_other_process(credential.pk, version, client)


async def _refresh_claimed(credential: Credential, client: httpx.AsyncClient) -> Credential:
    try:
        tokens = await REFRESHERS[credential.provider](client, credential.refresh_token)
    except PermanentOAuthError as exc:
        if exc.code == "refresh_token_reused":
            # Another process may have just rotated it: re-read before giving up.
            newer = await sync_to_async(services.load)(credential.pk)
            if newer.token_version != credential.token_version:
                return newer
        await sync_to_async(services.mark_needs_relogin)(credential.pk, f"refresh failed: {exc.message}")
        logger.warning("credential %s needs re-login: %s", credential.pk, exc.code or exc.status)
        raise RefreshError(exc.message, permanent=True) from None
    except OAuthError as exc:
        await sync_to_async(services.release_refresh)(credential.pk)
        raise RefreshError(exc.message, permanent=False) from None
    except BaseException:
        await sync_to_async(services.release_refresh)(credential.pk)
        raise
    logger.info("refreshed credential %s", credential.pk)
    return await sync_to_async(services.save_tokens)(credential.pk, tokens)


async def _wait_for_other_process(credential_id: int, version: int, client: httpx.AsyncClient) -> Credential:
    for _ in range(int(services.REFRESH_LOCK_SECONDS / WAIT_STEP)):
        await asyncio.sleep(WAIT_STEP)
        fresh = await sync_to_async(services.load)(credential_id)
        if fresh.token_version != version:
            return fresh
        if fresh.status != Credential.Status.ACTIVE:
            raise RefreshError(fresh.status_reason or "credential is not active", permanent=True)
        if fresh.refresh_lock_until is None:
            # The other process gave up (transient failure); try ourselves.
            return await _refresh_or_wait(fresh, version, client)
    raise RefreshError("timed out waiting for another process to refresh", permanent=False)


async def arefresh_due(margin_seconds: int) -> dict[int, str]:
    """Refresh every active credential expiring within the margin; returns id -> outcome."""
    outcomes: dict[int, str] = {}
    for credential in await sync_to_async(services.due_for_refresh)(margin_seconds):
        try:
            await arefresh(credential)
            outcomes[credential.pk] = "refreshed"
        except RefreshError as exc:
            outcomes[credential.pk] = "needs re-login" if exc.permanent else "failed, will retry"
    return outcomes


async def run_refresher(interval: float, margin_seconds: int) -> None:
    """Refresh tokens before they expire, forever (started once per process, see proxyhub.asgi)."""
    while True:
        try:
            outcomes = await arefresh_due(margin_seconds)
            if outcomes:
                logger.info("background refresh: %s", outcomes)
        except Exception:  # a database hiccup must not stop the loop
            logger.exception("background refresh failed")
        await asyncio.sleep(interval)


def refresh_now(credential: Credential) -> Credential:
    """Refresh one credential from sync code (admin actions, commands); raises RefreshError."""

    async def run() -> Credential:
        async with httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=10.0),
                                     proxy=credential.proxy_url or None, trust_env=False) as client:
            fresh = await arefresh(credential, client=client)
            if fresh.provider == Provider.CLAUDE and not (fresh.email and fresh.account_id and fresh.plan):
                # Off the request path, an admin's refresh may also learn what an import could not.
                known = TokenSet(fresh.access_token, email=fresh.email, account_id=fresh.account_id, plan=fresh.plan)
                found = await claude_oauth.with_profile(client, known)
                fresh = await sync_to_async(services.note_identity)(fresh.pk, found)
            return fresh

    return async_to_sync(run)()
