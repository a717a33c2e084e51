"""Alerts for the team lead: a webhook (Slack-compatible) and e-mail, once per episode across all processes.

Events and where they come from::

    credential_needs_relogin(credential_id, reason)   services.mark_needs_relogin (refresh refused, 401 after refresh)
    provider_unavailable(provider)                    the relay, when no account of a provider is ready
    window_high                                       check_once(): an account past PROXYHUB_ALERT_WINDOW_PERCENT
                                                      of a window, from Credential.windows (headers or polls)
    key_budget(key_prefix, limit, used, maximum)      the per-key limits: budget_80 / budget_100

An episode is one AlertEvent row whose unique ``open_key`` names it while it lasts
(``relogin:12``). Whichever process's INSERT succeeds sends the alert; the others hit
the unique constraint and send nothing. check_once() (every PROXYHUB_ALERT_CHECK_SECONDS
in each process, proxyhub.background) ends episodes whose condition cleared (the account
is active again, a provider has a ready account, a window reset) by setting ``open_key``
to NULL, so the next occurrence is a new episode.

Nothing here runs on the event loop: the hooks put work on daemon threads (one for
database steps, two for deliveries) and return at once. A webhook is POSTed with httpx
and retried PROXYHUB_ALERT_ATTEMPTS times with doubling waits; each attempt is counted on
the row. A process that dies mid-delivery leaves a lapsed lease that check_once() in any
process picks up. No alert carries a secret: accounts are named by label and id, keys by
their visible prefix, and reasons pass through scrub(). The webhook URL (often a secret
itself) is never logged.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from credentials import window_state
from credentials.alert_models import AlertEvent
from credentials.health import SHORT_NAMES, pool_health
from credentials.models import Credential

logger = logging.getLogger(__name__)

Event = AlertEvent.Event
Delivery = AlertEvent.Delivery

WEBHOOK_TIMEOUT = 10.0
LEASE_MARGIN = 30.0  # seconds a delivery lease outlasts the attempt it covers
UNAVAILABLE_RECHECK = 10.0  # a process asks the database about a provider's outage at most this often
BUDGET_LEVELS = (80, 100)

# Token-shaped strings that must never leave in an alert, whatever an upstream put in an error message.
_SECRETS = re.compile(
    r"(?i)bearer\s+\S+"
    r"|\beyJ[\w-]+\.[\w-]+\.[\w-]*"  # JWTs (id tokens, ChatGPT access tokens)
    r"|\b(?:sk|rt)-[\w-]{20,}"  # sk-ant-oat01-..., refresh tokens, whole ProxyHub keys (not their 12-char prefix)
    r"|[A-Za-z0-9_\-+/=]{40,}"  # any other long opaque run
)


def scrub(text: str) -> str:
    """``text`` with anything shaped like a token replaced by ``[redacted]``."""
    return _SECRETS.sub("[redacted]", text)


# --- background lanes -----------------------------------------------------------------------


class _Lane:
    """Daemon threads fed by a queue: neither the event loop nor process exit ever waits for an alert."""

    def __init__(self, name: str, threads: int) -> None:
        self.name, self.threads = name, threads
        self._queue: queue.Queue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = queue.Queue()
        self._started = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, fn, args))
        with self._lock:
            while self._started < self.threads:
                self._started += 1
                threading.Thread(target=self._run, name=f"{self.name}-{self._started}", daemon=True).start()
        return future

    def _run(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except Exception as exc:
                        logger.exception("alert work failed (%s)", type(exc).__name__)
                        future.set_exception(exc)
            finally:
                connections.close_all()  # this thread's connection must not outlive the job
                self._queue.task_done()

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0


_work = _Lane("proxyhub-alerts", 1)  # database steps: opening and ending episodes, the periodic check
_send = _Lane("proxyhub-alert-send", 2)  # deliveries, which may wait between retries
_unavailable_asked: dict[str, float] = {}
_budget_seen: dict[tuple[str, str], tuple[int, str]] = {}


def wait_idle(timeout: float = 10.0) -> bool:
    """True once every queued alert job finished (tests, and commands before they exit)."""
    deadline = time.monotonic() + timeout
    while not (_work.idle() and _send.idle()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def reset() -> None:
    """Forget this process's memory of recent checks (tests); episodes live in the database."""
    _unavailable_asked.clear()
    _budget_seen.clear()


# --- hooks (cheap, safe on the event loop) -------------------------------------------------------


def credential_needs_relogin(credential_id: int, reason: str) -> None:
    """Alert that an account needs re-login (once until it is active again). Returns at once."""
    _work.submit(_open_relogin, credential_id, reason)


def provider_unavailable(provider: str) -> None:
    """The relay found no ready account of ``provider``: alert once per outage. Returns at once.

    The database decides (an account may have just come back), at most every UNAVAILABLE_RECHECK
    seconds per process, so a flood of failing requests costs one query, not one each.
    """
    now = time.monotonic()
    if now - _unavailable_asked.get(provider, -1e9) < UNAVAILABLE_RECHECK:
        return
    _unavailable_asked[provider] = now
    _work.submit(_open_unavailable, provider)


def key_budget(key_prefix: str, limit_name: str, used: float, limit: float, period: str = "") -> None:
    """Tell alerts how much of one of a key's limits is used; fires budget_80 / budget_100 once per episode.

    Call it whenever the usage of a limit is known (after counting a request's tokens, say); it is
    a dictionary lookup when nothing changed, so it is safe on the event loop and per request.
    ``limit_name`` names the limit (``monthly_tokens``, ``daily_tokens``, ``monthly_cost``);
    ``period`` names the limit's current window (``2026-12`` for a monthly one, ``2026-12-04``
    for a daily one): a new period starts new episodes. An episode also ends when usage falls
    back under its level (a raised limit). Reaching 100 % first sends budget_100 alone.
    """
    if limit <= 0:
        return
    level = max((lv for lv in BUDGET_LEVELS if used >= limit * lv / 100), default=0)
    seen = (level, period)
    if _budget_seen.get((key_prefix, limit_name)) == seen:
        return
    _budget_seen[(key_prefix, limit_name)] = seen
    job = _work.submit(_sync_budget, key_prefix, limit_name, level, used, limit, period)
    # A job that failed (database away) is forgotten, so the next call tries again.
    job.add_done_callback(lambda done: done.exception() and _budget_seen.pop((key_prefix, limit_name), None))


# --- episodes ---------------------------------------------------------------------------------


def _label(credential: Credential) -> str:
    return credential.label or credential.email or credential.account_id or f"#{credential.pk}"


def _provider_name(provider: str) -> str:
    return str(SHORT_NAMES.get(provider, provider))


def open_episode(event: str, key: str, text: str, *, provider: str = "", credential: Credential | None = None,
                 key_prefix: str = "", detail: str = "") -> AlertEvent | None:
    """Insert the episode ``key`` and deliver it; None when it is open already (another process sent it)."""
    if AlertEvent.objects.filter(open_key=key).exists():
        return None  # the common case while an episode lasts, answered without a failing INSERT
    now = timezone.now()
    row = AlertEvent(
        event=event, open_key=key, episode=key, created_at=now, provider=provider, key_prefix=key_prefix,
        credential_id=credential.pk if credential else None, credential=_label(credential) if credential else "",
        detail=scrub(detail)[:500], text=scrub(text)[:800],
        webhook_status=Delivery.PENDING if settings.PROXYHUB_ALERT_WEBHOOK_URL else Delivery.OFF,
        email_status=Delivery.PENDING if settings.PROXYHUB_ALERT_EMAILS else Delivery.OFF,
        lease_until=now + timedelta(seconds=LEASE_MARGIN),
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        return None  # the episode is open: whoever opened it sends
    logger.warning("alert %s: %s", event, row.text)
    if row.webhook_status == Delivery.PENDING or row.email_status == Delivery.PENDING:
        _send.submit(deliver, row.pk, row.lease_until)
    return row


def end_episodes(keys: Q) -> int:
    """End the open episodes matching ``keys`` (a Q over AlertEvent); returns how many."""
    return AlertEvent.objects.filter(keys, open_key__isnull=False).update(open_key=None, resolved_at=timezone.now())


def _open_relogin(credential_id: int, reason: str) -> None:
    credential = Credential.objects.filter(pk=credential_id).first()
    if credential is None or credential.status != Credential.Status.NEEDS_RELOGIN:
        return
    name = _provider_name(credential.provider)
    why = reason or credential.status_reason or "needs re-login"
    open_episode(Event.CREDENTIAL_NEEDS_RELOGIN, f"relogin:{credential.pk}",
                 f"ProxyHub: {name} account {_label(credential)} needs re-login ({why}). "
                 f"Reconnect it in the admin (Credentials).",
                 provider=credential.provider, credential=credential, detail=why)


def _open_unavailable(provider: str) -> None:
    health = next((h for h in pool_health(timezone.now()) if h.provider == provider), None)
    if health is None or health.connected == 0 or health.ready > 0:
        return
    parts = []
    if health.cooling:
        until = f" until {health.next_ready_at:%H:%M:%S} UTC" if health.next_ready_at else ""
        parts.append(f"{health.cooling} cooling down{until}")
    if health.needs_relogin:
        parts.append(f"{health.needs_relogin} need re-login")
    detail = f"{health.connected} account(s), none ready: " + ", ".join(parts)
    open_episode(Event.PROVIDER_UNAVAILABLE, f"unavailable:{provider}",
                 f"ProxyHub: no {health.name} account is ready ({detail}); its models fail until one is.",
                 provider=provider, detail=detail)


def _budget_key(level: int, key_prefix: str, limit_name: str, period: str) -> str:
    return f"budget_{level}:{key_prefix}:{limit_name}:{period}"


def _sync_budget(key_prefix: str, limit_name: str, level: int, used: float, limit: float, period: str) -> None:
    # Levels above the current one, and any episode of another period, are over.
    still_open = {_budget_key(lv, key_prefix, limit_name, period) for lv in BUDGET_LEVELS if lv <= level}
    mine = Q()
    for lv in BUDGET_LEVELS:
        mine |= Q(open_key__startswith=f"budget_{lv}:{key_prefix}:{limit_name}:")
    end_episodes(mine & ~Q(open_key__in=still_open))
    if not level:
        return
    percent = used / limit * 100
    detail = f"{limit_name}: {_number(used)} of {_number(limit)} ({percent:.0f} %)" + (f", {period}" if period else "")
    event = Event.BUDGET_100 if level >= 100 else Event.BUDGET_80
    reached = "has used up" if level >= 100 else f"has used {percent:.0f} % of"
    open_episode(event, _budget_key(level, key_prefix, limit_name, period),
                 f"ProxyHub: key {key_prefix}… {reached} its {limit_name} limit ({detail}).",
                 key_prefix=key_prefix, detail=detail)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or value >= 100 else f"{value:,.2f}"


# --- the periodic check ---------------------------------------------------------------------


def check_once(now: datetime | None = None) -> None:
    """Open window_high and re-login episodes the data shows, end those that cleared, resume lost deliveries."""
    now = now or timezone.now()
    threshold = float(settings.PROXYHUB_ALERT_WINDOW_PERCENT)
    credentials = list(Credential.objects.exclude(status=Credential.Status.DISABLED).only(
        "id", "provider", "label", "email", "account_id", "status", "status_reason", "windows", "last_error_at"))
    relogin = {c.pk for c in credentials if c.status == Credential.Status.NEEDS_RELOGIN}
    for pk in relogin:
        _open_relogin(pk, "")  # a status set by any path (or before this release) is alerted too
    # An account failing within the last check period keeps its episode: a concurrent refresh may have
    # set it active for a moment before the next rejection, and that is not a recovery.
    grace = now - timedelta(seconds=max(float(settings.PROXYHUB_ALERT_CHECK_SECONDS), 1.0))
    relogin |= {c.pk for c in credentials if c.last_error_at and c.last_error_at > grace}
    end_episodes(Q(open_key__startswith="relogin:") & ~Q(open_key__in=[f"relogin:{pk}" for pk in relogin]))
    high: set[str] = set()
    for credential in credentials:
        for window in window_state.window_list(credential.windows):
            resets = datetime.fromisoformat(window["resets_at"]) if window["resets_at"] else None
            if window["used_percent"] < threshold or (resets is not None and resets <= now):
                continue
            key = f"window_high:{credential.pk}:{window['name']}"
            high.add(key)
            _open_window_high(credential, key, window)
    end_episodes(Q(open_key__startswith="window_high:") & ~Q(open_key__in=high))
    ready = {h.provider for h in pool_health(now) if h.ready or not h.connected}
    end_episodes(Q(open_key__in=[f"unavailable:{p}" for p in ready]))
    _resume_deliveries(now)


def _open_window_high(credential: Credential, key: str, window: window_state.WindowView) -> None:
    resets = f", resets {window['resets_at'][:16].replace('T', ' ')} UTC" if window["resets_at"] else ""
    detail = f"{window['name']} window at {window['used_percent']:.0f} %{resets}"
    open_episode(Event.WINDOW_HIGH, key,
                 f"ProxyHub: {_provider_name(credential.provider)} account {_label(credential)} is at "
                 f"{window['used_percent']:.0f} % of its {window['name']} window{resets}.",
                 provider=credential.provider, credential=credential, detail=detail)


def _resume_deliveries(now: datetime) -> None:
    """Deliveries whose process died (lease lapsed, still pending) are taken over here."""
    stale = AlertEvent.objects.filter(
        Q(webhook_status=Delivery.PENDING) | Q(email_status=Delivery.PENDING),
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
    ).values_list("pk", flat=True)[:50]
    for pk in stale:
        _send.submit(deliver, pk)


async def run_checks(interval: float) -> None:
    """check_once() every ``interval`` seconds, off the event loop, forever (proxyhub.background)."""
    while True:
        try:
            await asyncio.wrap_future(_work.submit(check_once))
        except Exception:  # a database hiccup must not end the loop
            logger.warning("alert check failed; will retry", exc_info=True)
        await asyncio.sleep(interval)


# --- delivery ---------------------------------------------------------------------------------


def _claim(alert_id: int, lease: datetime | None) -> bool:
    """Take the delivery: with ``lease``, only if that lease (set at insert) is still ours; without, only if
    the last one lapsed. A conditional UPDATE either way, so exactly one process delivers."""
    now = timezone.now()
    held = Q(lease_until=lease) if lease is not None else Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return AlertEvent.objects.filter(held, pk=alert_id).update(
        lease_until=now + timedelta(seconds=LEASE_MARGIN)) == 1


def payload(alert: AlertEvent) -> dict[str, Any]:
    """The webhook body: Slack's ``text`` plus the structured fields."""
    return {
        "text": alert.text,
        "event": alert.event,
        "provider": alert.provider or None,
        "credential": alert.credential or None,
        "credential_id": alert.credential_id,
        "key_prefix": alert.key_prefix or None,
        "detail": alert.detail,
        "at": alert.created_at.isoformat(),
        "episode": alert.episode,
    }


def deliver(alert_id: int, lease: datetime | None = None) -> None:
    """Send one alert's pending webhook and e-mail, retrying each with doubling waits; status on the row.

    ``lease``: the lease the inserting process set (it delivers unless that lapsed and another process
    took over); None: take over a lapsed delivery (a process died mid-way).
    """
    attempts = max(int(settings.PROXYHUB_ALERT_ATTEMPTS), 1)
    wait = float(settings.PROXYHUB_ALERT_RETRY_SECONDS)
    if not _claim(alert_id, lease):
        return  # another process is delivering it
    alert = AlertEvent.objects.filter(pk=alert_id).first()
    if alert is None:
        return
    channels: list[tuple[str, str, Callable[[AlertEvent], None]]] = [
        ("webhook_status", "webhook_attempts", _post_webhook), ("email_status", "email_attempts", _send_email)]
    for status_field, attempts_field, send in channels:
        if getattr(alert, status_field) != Delivery.PENDING:
            continue
        while getattr(alert, attempts_field) < attempts:
            done = getattr(alert, attempts_field)
            pause = wait * 2 ** (done - 1) if done else 0.0
            AlertEvent.objects.filter(pk=alert_id).update(
                lease_until=timezone.now() + timedelta(seconds=pause + WEBHOOK_TIMEOUT + LEASE_MARGIN))
            time.sleep(pause)
            error = ""
            try:
                send(alert)
            except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, recorded, retried
                error = _describe(exc)
            setattr(alert, attempts_field, done + 1)
            fields: dict[str, Any] = {attempts_field: done + 1}
            if not error:
                fields.update({status_field: Delivery.SENT, "delivered_at": timezone.now()})
                setattr(alert, status_field, Delivery.SENT)
            else:
                fields["last_error"] = f"{status_field.split('_')[0]}: {error}"[:300]
                if done + 1 >= attempts:
                    fields[status_field] = Delivery.FAILED
                    setattr(alert, status_field, Delivery.FAILED)
                logger.warning("alert %s: %s attempt %d of %d failed: %s", alert.pk, status_field.split("_")[0],
                               done + 1, attempts, error)
            AlertEvent.objects.filter(pk=alert_id).update(**fields)
            if not error:
                break
    AlertEvent.objects.filter(pk=alert_id).update(lease_until=None)


class WebhookRefusedError(Exception):
    """The webhook answered with a non-2xx status."""


def _post_webhook(alert: AlertEvent) -> None:
    response = httpx.post(settings.PROXYHUB_ALERT_WEBHOOK_URL, json=payload(alert), timeout=WEBHOOK_TIMEOUT,
                          trust_env=False)
    if not 200 <= response.status_code < 300:
        raise WebhookRefusedError(f"HTTP {response.status_code}")


def _send_email(alert: AlertEvent) -> None:
    lines = [alert.text, "", f"event: {alert.event}"]
    lines += [f"{name}: {value}" for name, value in (("provider", alert.provider), ("credential", alert.credential),
                                                      ("key", alert.key_prefix), ("detail", alert.detail)) if value]
    lines.append(f"at: {alert.created_at:%Y-%m-%d %H:%M:%S} UTC")
    subject = f"[ProxyHub] {alert.get_event_display()}: {alert.credential or alert.key_prefix or alert.provider}"
    send_mail(subject[:150], "\n".join(lines), None, list(settings.PROXYHUB_ALERT_EMAILS), fail_silently=False)


def _describe(exc: Exception) -> str:
    """A failure without the URL (a webhook URL is a secret): the status, or the exception's class."""
    if isinstance(exc, WebhookRefusedError):
        return str(exc)
    return type(exc).__name__
