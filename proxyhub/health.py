"""/healthz (the process answers) and /readyz (it can serve: a load balancer's readiness probe).

/readyz answers 200 when the database answers and every provider that has
accounts has a usable one, else 503 naming each problem. It names accounts by
count and state only: the probe is unauthenticated, so no email or label.
A host that is draining (SIGTERM, proxyhub.drain) is not ready either.
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from credentials.health import ProviderHealth, pool_health
from proxyhub import drain

logger = logging.getLogger(__name__)
_last_problems: list[str] = []  # what this process's last /readyz found wrong


def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process serves HTTP at all."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """200 ``{"status": "ready", ...}`` or 503 ``{"status": "unavailable", "problems": [...], ...}``."""
    problems: list[str] = []
    report: dict[str, Any] = {"database": "ok", "providers": {}}
    if drain.draining():
        problems.append("shutting down: finishing the requests in flight")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        health = pool_health(timezone.now())
    except Exception as exc:  # any driver error means the same to a load balancer
        # The class name only: a driver's message may carry the host, user or database name.
        report["database"] = f"unreachable ({type(exc).__name__})"
        problems.append(f"database unreachable ({type(exc).__name__})")
        health = []
    for row in health:
        total = row.connected + row.disabled
        if not total:
            continue  # a provider nobody connected is not a fault of this host
        report["providers"][row.provider] = _provider_report(row)
        if not row.serving:
            problems.append(f"{row.name}: {total} account{'s' if total != 1 else ''}, none usable ({_why(row)})")
    status = 503 if problems else 200
    body = {"status": "unavailable" if problems else "ready", "problems": problems, **report}
    response = JsonResponse(body, status=status, headers={"cache-control": "no-store"})
    # A probe every few seconds would log each 503 as an error (django.request); say it when it changes instead.
    response._has_been_logged = True  # type: ignore[attr-defined]
    _log_change(problems)
    return response


def _log_change(problems: list[str]) -> None:
    global _last_problems
    if problems != _last_problems:
        if problems:
            logger.warning("not ready: %s", "; ".join(problems))
        elif _last_problems:
            logger.info("ready again")
        _last_problems = problems


def _provider_report(row: ProviderHealth) -> dict[str, Any]:
    return {"ready": row.ready, "cooling": row.cooling, "needs_relogin": row.needs_relogin, "disabled": row.disabled,
            "cooling_until": row.next_ready_at.isoformat() if row.next_ready_at else None}


def _why(row: ProviderHealth) -> str:
    reasons = []
    if row.cooling:
        until = row.next_ready_at.isoformat(timespec="seconds") if row.next_ready_at else "?"
        reasons.append(f"{row.cooling} cooling down until {until}")
    if row.needs_relogin:
        reasons.append(f"{row.needs_relogin} need{'s' if row.needs_relogin == 1 else ''} re-login")
    if row.disabled:
        reasons.append(f"{row.disabled} disabled")
    return ", ".join(reasons)
