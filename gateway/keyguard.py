"""The wrong-key throttle and what a refused key is told.

Failed key checks (unknown, revoked or expired keys, no key) are counted per client address
(the socket's peer, or the client behind it when the peer is one of PROXYHUB_TRUSTED_PROXIES:
proxyhub.client_ip) in a sliding window of the shared store (gateway.shared: Redis or the
database), so the count holds across every process and host. An IPv6 client counts per /64, the
block one host or subscriber is usually given, so it cannot step to a fresh address per guess.
Past PROXYHUB_BAD_KEY_LIMIT failures in PROXYHUB_BAD_KEY_WINDOW seconds, that address's failed
checks are answered 429 with ``retry-after`` instead of 401, which slows key guessing to the
limit's pace. Only failures are counted and refused: a valid key is never looked at here, so a
teammate behind the same NAT address as a misconfigured client keeps working. If the store
cannot be reached, the throttle is off (logged once a minute) and refusals stay 401.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from django.conf import settings

from accounts.services import KeyCheck
from gateway import shared
from proxyhub.client_ip import client_ip, parse_address

logger = logging.getLogger(__name__)

_LOG_EVERY = 60.0
_logged_at = -1e9

HINT = "Send your ProxyHub key as `x-api-key` or `Authorization: Bearer`; ask your admin for one if you have none."


def address_of(client: Any, forwarded_for: str | None = None) -> str:
    """The client's address from the ASGI scope's ``client`` (host, port) and its X-Forwarded-For
    (believed only from PROXYHUB_TRUSTED_PROXIES), or ``unknown``."""
    peer = str(client[0]) if isinstance(client, (list, tuple)) and client and client[0] else None
    return client_ip(peer, forwarded_for, settings.PROXYHUB_TRUSTED_PROXIES) or "unknown"


def bucket_of(address: str) -> str:
    """What failures are counted under: the address, or for IPv6 its /64."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


async def note_failure(client: Any, forwarded_for: str | None = None) -> float | None:
    """Count one failed key check from ``client`` (the ASGI scope's, with the request's X-Forwarded-For);
    the seconds to wait when it is past the limit, else None."""
    limit = settings.PROXYHUB_BAD_KEY_LIMIT
    if limit <= 0:
        return None
    bucket = bucket_of(address_of(client, forwarded_for))
    try:
        verdict = await shared.backend().hit(f"badkey:{bucket}", limit, settings.PROXYHUB_BAD_KEY_WINDOW)
    except shared.SharedStateError as exc:
        _log_unenforced(exc)
        return None
    return None if verdict.allowed else max(verdict.retry_after, 1.0)


def _log_unenforced(exc: Exception) -> None:
    global _logged_at
    if time.monotonic() - _logged_at > _LOG_EVERY:
        _logged_at = time.monotonic()
        logger.warning("wrong-key throttle not enforced: the shared store is unreachable (%s)", exc)


def refusal_message(check: KeyCheck) -> str:
    """The 401 message for a refused key: why, when the key is known (revoked, expired), else a hint."""
    when = f" on {check.since:%Y-%m-%d %H:%M} UTC" if check.since else ""
    if check.refusal == "missing":
        return "Missing API key. " + HINT
    if check.refusal == "revoked":
        return f"This API key was revoked{when}. Ask your admin for a new one, or create one on /me/."
    if check.refusal == "expired":
        return f"This API key expired{when}. Ask your admin for a new one, or create one on /me/."
    if check.refusal == "user_inactive":
        return "This API key belongs to a deactivated account. Ask your admin."
    return "Invalid API key. " + HINT


def throttled_message(seconds: int) -> str:
    return (f"Too many requests with a wrong, revoked or expired API key from your address. "
            f"Try again in {seconds} s; valid keys are not affected.")
