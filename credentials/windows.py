"""Polling every account's subscription windows off the request path (PROTOCOLS.md §4.8, §5.10).

Headers only tell the windows of accounts that serve requests; an idle
account's 5-hour and weekly state comes from the providers' usage endpoints,
polled every PROXYHUB_WINDOW_POLL_SECONDS by a background task in each
process.  Single-flight across processes: claim_poll() is a conditional
UPDATE of ``windows_polled_at``, so one process polls an account per period
and the others skip it.  A failing endpoint keeps the last known windows; the
next period tries again.  Answers are stored in the one shape of
credentials.window_state, merged with what headers reported.

Errors: PollError (the endpoint could not be read; the caller keeps old data).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import httpx
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from credentials import window_state
from credentials.models import Credential, Provider
from credentials.refresh import RefreshError, arefresh, token_client

logger = logging.getLogger(__name__)

MAX_TICK = 15.0  # seconds between looks for due accounts: new accounts get windows this soon
TIMEOUT = 15.0

_failing: set[int] = set()  # credentials whose last poll in this process failed (logged once per episode)


class PollError(Exception):
    """The usage endpoint gave no usable answer (network, status, body); keep the last known windows."""


# --- database steps (sync) -----------------------------------------------------


def due_for_poll(interval: float) -> list[Credential]:
    """Active credentials with a token whose windows were not polled within ``interval`` seconds."""
    horizon = timezone.now() - timedelta(seconds=interval)
    return list(Credential.objects.filter(
        Q(windows_polled_at__isnull=True) | Q(windows_polled_at__lte=horizon),
        status=Credential.Status.ACTIVE,
    ).exclude(access_token="").order_by("id"))


def claim_poll(credential_id: int, interval: float) -> bool:
    """Take this period's poll of a credential; False when another process already did."""
    now = timezone.now()
    return Credential.objects.filter(
        Q(windows_polled_at__isnull=True) | Q(windows_polled_at__lte=now - timedelta(seconds=interval)),
        id=credential_id,
    ).update(windows_polled_at=now) == 1


def save_polled(credential_id: int, fresh: dict[str, Any]) -> None:
    """Merge polled windows into the stored ones (locked, so a concurrent header write is not lost)."""
    with transaction.atomic():
        credential = Credential.objects.select_for_update().only("windows", "plan").get(id=credential_id)
        fields: dict[str, Any] = {"windows": window_state.merge(credential.windows, fresh)}
        if fresh.get("plan") and not credential.plan:
            fields["plan"] = fresh["plan"]
        Credential.objects.filter(id=credential_id).update(**fields)


# --- the usage endpoints ---------------------------------------------------------


def _request(credential: Credential) -> tuple[str, dict[str, str]]:
    if credential.provider == Provider.CLAUDE:
        return settings.PROXYHUB_CLAUDE_USAGE_URL, {
            "authorization": f"Bearer {credential.access_token}", "anthropic-beta": "oauth-2025-04-20",
            "user-agent": settings.PROXYHUB_CLAUDE_USER_AGENT, "accept": "application/json",
        }
    return settings.PROXYHUB_CODEX_USAGE_URL, {
        "authorization": f"Bearer {credential.access_token}", "chatgpt-account-id": credential.account_id,
        "user-agent": settings.PROXYHUB_CODEX_USER_AGENT, "originator": settings.PROXYHUB_CODEX_ORIGINATOR,
        "accept": "application/json",
    }


async def _get(client: httpx.AsyncClient, credential: Credential) -> httpx.Response:
    url, headers = _request(credential)
    try:
        return await client.get(url, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise PollError(f"usage endpoint unreachable ({type(exc).__name__})") from None


async def apoll(credential: Credential, client: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """The credential's windows as its provider's usage endpoint reports them; raises PollError.

    A 401 means the access token expired: refresh it (single-flight, as on
    the request path) and ask once more.
    """
    if credential.provider == Provider.CODEX and not credential.account_id:
        raise PollError("no ChatGPT account id to ask with")
    client = client or token_client(credential.proxy_url)
    response = await _get(client, credential)
    if response.status_code == 401 and credential.refresh_token:
        try:
            credential = await arefresh(credential, client=client)
        except RefreshError as exc:
            raise PollError(f"token refresh failed: {exc}") from None
        response = await _get(client, credential)
    if response.status_code != 200:
        raise PollError(f"usage endpoint answered {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        raise PollError("usage endpoint answered something that is not JSON") from None
    parse = window_state.claude_usage if credential.provider == Provider.CLAUDE else window_state.codex_usage
    fresh = parse(data)
    if not any(isinstance(v, dict) for v in fresh.values()):
        raise PollError("usage endpoint answered no window this version understands")
    return fresh


async def apoll_due(interval: float) -> dict[int, str]:
    """Poll every credential due this period that this process wins; returns id -> outcome."""
    outcomes: dict[int, str] = {}
    for credential in await sync_to_async(due_for_poll)(interval):
        if not await sync_to_async(claim_poll)(credential.pk, interval):
            continue  # another process polls it this period
        try:
            fresh = await apoll(credential)
        except PollError as exc:
            _log_failure(credential, str(exc))
            outcomes[credential.pk] = "failed, kept the last known windows"
            continue
        await sync_to_async(save_polled)(credential.pk, fresh)
        if credential.pk in _failing:
            _failing.discard(credential.pk)
            logger.info("window poll for credential %s works again", credential.pk)
        outcomes[credential.pk] = "polled"
    return outcomes


def _log_failure(credential: Credential, reason: str) -> None:
    if credential.pk in _failing:
        logger.debug("window poll for credential %s failed again: %s", credential.pk, reason)
        return
    _failing.add(credential.pk)
    logger.warning("window poll for credential %s failed: %s; keeping its last known windows and "
                   "trying again next period", credential.pk, reason)


async def run_window_poller(interval: float) -> None:
    """Poll due accounts forever (started once per process, see proxyhub.background)."""
    tick = max(min(interval, MAX_TICK), 0.2)
    while True:
        try:
            await apoll_due(interval)
        except Exception:  # a database hiccup must not stop the loop
            logger.exception("window poll round failed")
        await asyncio.sleep(tick)


def poll_now(credential_ids: list[int] | None = None) -> dict[int, str]:
    """Poll now, from sync code (``pool_status --poll``): every active credential, or the given ones.

    Each poll still takes the cross-process claim (with no minimum age), so a
    background poll running at the same moment is not doubled.
    """

    async def run() -> dict[int, str]:
        outcomes: dict[int, str] = {}
        credentials = await sync_to_async(due_for_poll)(0)
        for credential in credentials:
            if credential_ids is not None and credential.pk not in credential_ids:
                continue
            if not await sync_to_async(claim_poll)(credential.pk, 0):
                outcomes[credential.pk] = "being polled by another process"
                continue
            async with httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT, connect=10.0),
                                         proxy=credential.proxy_url or None, trust_env=False) as client:
                try:
                    fresh = await apoll(credential, client)
                except PollError as exc:
                    outcomes[credential.pk] = f"failed: {exc}"
                    continue
            await sync_to_async(save_polled)(credential.pk, fresh)
            outcomes[credential.pk] = "polled"
        return outcomes

    return async_to_sync(run)()
