"""Alerts against a loopback webhook receiver: once per episode across processes, retried, never a secret.

The in-process gateway (fixture ``gateway``) reads the alert settings the ``settings`` fixture sets;
real daphne processes (tests.servers) get them in their environment.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from django.core import mail

from credentials import alerts
from credentials.models import AlertEvent, Credential
from tests.servers import Server, daphne, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


class Receiver:
    """A webhook endpoint on loopback that records each POSTed JSON body; it can fail the first N."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.calls = 0
        self.fail_first, self.status = fail_first, status
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                text = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                with lock:
                    receiver.calls += 1
                    failing = receiver.calls <= receiver.fail_first
                    if not failing:
                        receiver.raw.append(text)
                        receiver.bodies.append(json.loads(text))
                self.send_response(receiver.status if failing else 200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secretpath"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        return [b for b in self.bodies if event is None or b["event"] == event]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def alerting(settings: Any, receiver: Receiver) -> Iterator[Receiver]:
    """The in-process gateway sends alerts to ``receiver``, retrying quickly."""
    alerts.reset()
    settings.PROXYHUB_ALERT_WEBHOOK_URL = receiver.url
    settings.PROXYHUB_ALERT_EMAILS = []
    settings.PROXYHUB_ALERT_RETRY_SECONDS = 0.05
    settings.PROXYHUB_ALERT_ATTEMPTS = 4
    yield receiver
    assert alerts.wait_idle(20), "alert jobs still running"
    alerts.reset()


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.05)
    return result


def post(url: str, key: str, body: dict[str, Any] = BODY) -> httpx.Response:
    return httpx.post(url + "/v1/messages", json=body, headers={"x-api-key": key}, timeout=30)


def secrets_of(*credentials: Credential, keys: tuple[str, ...] = ()) -> list[str]:
    """Every token a credential held (now or before a refresh, read from the fakes' records) and raw keys."""
    found = list(keys)
    for credential in credentials:
        credential.refresh_from_db()
        found += [t for t in (credential.access_token, credential.refresh_token, credential.id_token) if t]
    return found


def assert_no_secret(texts: list[str], secrets: list[str], fake: Any = None) -> None:
    if fake is not None:  # tokens the fake issued or was sent during the test
        for r in fake.token_requests("claude"):
            secrets = secrets + [v for v in (r.json or {}).values() if isinstance(v, str) and len(v) > 20]
    for text in texts:
        for secret in secrets:
            assert secret not in text, "an alert carried a secret"
        assert "secretpath" not in text  # the webhook URL is a secret too


# --- credential_needs_relogin, across two real processes ----------------------------------------


def _two_servers(env: dict[str, str]) -> ExitStack:
    stack = ExitStack()
    started = [daphne(env), daphne(env)]
    with ThreadPoolExecutor(2) as executor:  # both boot at once: Django takes seconds each
        entering = [executor.submit(cm.__enter__) for cm in started]
    for cm, future in zip(started, entering):
        if future.exception() is None:
            stack.push(cm.__exit__)
    for future in entering:
        future.result()
    stack.servers = [f.result() for f in entering]  # type: ignore[attr-defined]
    return stack


def test_an_account_rejected_after_refresh_sends_one_relogin_alert_from_two_processes(
        catalog_seeded, fake, api_key_factory, credential_factory, receiver):
    credential = credential_factory(email="team-max-1@example.com")
    api_key, key = api_key_factory()
    fake.add_fault("claude", "expired", times=200)  # 401 for every token, the refreshed one too
    env = server_env(fake, session_database_url(), PROXYHUB_ALERT_WEBHOOK_URL=receiver.url,
                     PROXYHUB_ALERT_CHECK_SECONDS="0.5", PROXYHUB_ALERT_RETRY_SECONDS="0.1",
                     PROXYHUB_BACKGROUND_REFRESH="false")
    with _two_servers(env) as stack:
        a, b = stack.servers
        with ThreadPoolExecutor(8) as executor:
            statuses = list(executor.map(lambda i: post((a, b)[i % 2].url, key).status_code, range(12)))
        assert all(s in (502, 503) for s in statuses), statuses
        eventually(lambda: receiver.events("credential_needs_relogin"))
        time.sleep(2.5)  # room for a duplicate to arrive, from either process or their periodic checks
        relogin = receiver.events("credential_needs_relogin")
        assert len(relogin) == 1
        alert = relogin[0]
        assert alert["provider"] == "claude" and alert["credential"] == "team-max-1@example.com"
        assert alert["credential_id"] == credential.pk and alert["key_prefix"] is None
        assert "needs re-login" in alert["text"] and "rejected after refresh" in alert["detail"]
        assert len(receiver.events("provider_unavailable")) == 1  # the requests after it found no ready account
        row = AlertEvent.objects.get(event="credential_needs_relogin")
        assert row.webhook_status == "sent" and row.webhook_attempts == 1 and row.is_open

        # Re-login ends the episode (the periodic check sees the account active again) ...
        fake.reset()
        Credential.objects.filter(pk=credential.pk).update(status="active", status_reason="")
        eventually(lambda: AlertEvent.objects.get(pk=row.pk).resolved_at is not None)
        eventually(lambda: AlertEvent.objects.get(event="provider_unavailable").resolved_at is not None)
        # ... so the next rejection is a new episode, alerted again, once.
        fake.add_fault("claude", "expired", times=200)
        assert post(b.url, key).status_code in (502, 503)
        eventually(lambda: len(receiver.events("credential_needs_relogin")) == 2)
        time.sleep(1.5)
        assert len(receiver.events("credential_needs_relogin")) == 2
    assert_no_secret(receiver.raw, secrets_of(credential, keys=(key, api_key.digest)), fake)


# --- provider_unavailable, retries, e-mail (in-process gateway) -----------------------------------


def test_no_ready_account_alerts_provider_unavailable_once_until_one_is_ready(
        gateway, alerting, api_key_factory, credential_factory):
    from datetime import timedelta

    from django.utils import timezone

    until = timezone.now() + timedelta(minutes=10)
    credential = credential_factory(cooldown_until=until, cooldown_reason="429 rate_limit_error")
    _, key = api_key_factory()
    assert [post(gateway, key).status_code for _ in range(3)] == [429] * 3
    eventually(lambda: alerting.events("provider_unavailable"))
    alerts.reset()  # forget this process's short memory: the database alone must de-duplicate
    assert post(gateway, key).status_code == 429
    assert alerts.wait_idle()
    [alert] = alerting.events()
    assert alert["event"] == "provider_unavailable" and alert["provider"] == "claude"
    assert "1 cooling down until" in alert["detail"] and alert["credential"] is None
    assert alert["text"].startswith("ProxyHub: no Claude account is ready")

    Credential.objects.filter(pk=credential.pk).update(cooldown_until=None)
    alerts.check_once()
    row = AlertEvent.objects.get()
    assert row.resolved_at is not None and not row.is_open
    assert_no_secret(alerting.raw, secrets_of(credential, keys=(key,)))


def _refresh_refused(fake: Any, credential: Credential, settings: Any, credential_factory: Any) -> None:
    """``credential`` is tried first and its refresh is refused; a healthy second account serves instead."""
    settings.PROXYHUB_POOL_STRATEGY = "priority"
    Credential.objects.filter(pk=credential.pk).update(priority=10)
    credential_factory()
    fake.expire_access_token(credential.access_token)
    fake.add_fault("claude_token", "token_error", status=400,
                   body={"error": "invalid_grant", "error_description": "Refresh token revoked"})


def test_a_failing_webhook_is_retried_until_it_answers(gateway, settings, api_key_factory, credential_factory, fake):
    receiver = Receiver(fail_first=2, status=503)
    try:
        alerts.reset()
        settings.PROXYHUB_ALERT_WEBHOOK_URL, settings.PROXYHUB_ALERT_RETRY_SECONDS = receiver.url, 0.1
        settings.PROXYHUB_ALERT_ATTEMPTS, settings.PROXYHUB_ALERT_EMAILS = 4, []
        credential = credential_factory()
        _, key = api_key_factory()
        _refresh_refused(fake, credential, settings, credential_factory)
        started = time.monotonic()
        assert post(gateway, key).status_code == 200
        eventually(lambda: receiver.bodies)
        assert time.monotonic() - started >= 0.1 + 0.2  # waited between attempts, doubling
        assert alerts.wait_idle()
        row = AlertEvent.objects.get()
        assert (row.webhook_status, row.webhook_attempts, receiver.calls) == ("sent", 3, 3)
        assert row.last_error == "webhook: HTTP 503" and row.delivered_at is not None
        assert receiver.bodies[0]["event"] == "credential_needs_relogin"
        assert "invalid_grant" in receiver.bodies[0]["detail"] or "revoked" in receiver.bodies[0]["detail"]
    finally:
        receiver.close()


def test_a_webhook_that_keeps_failing_is_given_up_after_the_attempts(gateway, settings, api_key_factory,
                                                                    credential_factory, fake):
    receiver = Receiver(fail_first=100)
    try:
        alerts.reset()
        settings.PROXYHUB_ALERT_WEBHOOK_URL, settings.PROXYHUB_ALERT_RETRY_SECONDS = receiver.url, 0.02
        settings.PROXYHUB_ALERT_ATTEMPTS, settings.PROXYHUB_ALERT_EMAILS = 3, []
        credential = credential_factory()
        _, key = api_key_factory()
        _refresh_refused(fake, credential, settings, credential_factory)
        assert post(gateway, key).status_code == 200
        eventually(lambda: AlertEvent.objects.filter(webhook_status="failed").exists())
        row = AlertEvent.objects.get()
        assert (row.webhook_attempts, receiver.calls) == (3, 3)
        assert row.last_error == "webhook: HTTP 500" and "secretpath" not in row.last_error
    finally:
        assert alerts.wait_idle()
        receiver.close()


def test_alerts_are_mailed_with_djangos_mail_settings(gateway, settings, api_key_factory, credential_factory, fake):
    alerts.reset()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PROXYHUB_ALERT_WEBHOOK_URL, settings.PROXYHUB_ALERT_EMAILS = "", ["lead@example.com", "ops@example.com"]
    mail.outbox = []
    credential = credential_factory(email="team-max-2@example.com")
    api_key, key = api_key_factory()
    _refresh_refused(fake, credential, settings, credential_factory)
    assert post(gateway, key).status_code == 200
    eventually(lambda: mail.outbox)
    assert alerts.wait_idle()
    [message] = mail.outbox
    assert message.to == ["lead@example.com", "ops@example.com"]
    assert "team-max-2@example.com" in message.subject and "re-login" in message.subject
    assert "needs re-login" in message.body and "event: credential_needs_relogin" in message.body
    row = AlertEvent.objects.get()
    assert (row.email_status, row.email_attempts, row.webhook_status) == ("sent", 1, "off")
    assert_no_secret([message.subject, message.body], secrets_of(credential, keys=(key, api_key.digest)), fake)


# --- window_high, from response headers and from polled usage, across two processes ----------------


def test_an_account_past_90_percent_of_a_window_alerts_once_per_window(
        catalog_seeded, fake, api_key_factory, credential_factory, receiver):
    served = credential_factory(email="busy@example.com")  # serves: response headers report its windows
    idle = credential_factory(email="idle@example.com", priority=-1)  # serves nothing: only the poll knows
    _, key = api_key_factory()
    fake.set_account_utilization("claude", served.account_id, five_hour=0.93, seven_day=0.40)
    fake.set_account_utilization("claude", idle.account_id, five_hour=0.10, seven_day=0.96)
    env = server_env(fake, session_database_url(), PROXYHUB_ALERT_WEBHOOK_URL=receiver.url,
                     PROXYHUB_ALERT_CHECK_SECONDS="0.5", PROXYHUB_POOL_STRATEGY="priority",
                     PROXYHUB_WINDOW_POLL_SECONDS="1", PROXYHUB_BACKGROUND_REFRESH="false")
    with _two_servers(env) as stack:
        a, b = stack.servers
        assert post(a.url, key).status_code == 200  # priority: the busy account serves it
        eventually(lambda: len(receiver.events("window_high")) >= 2)
        time.sleep(1.5)
        by_account = {body["credential"]: body for body in receiver.events("window_high")}
        assert len(receiver.events("window_high")) == 2 and set(by_account) == {"busy@example.com", "idle@example.com"}
        assert "5h window at 93 %" in by_account["busy@example.com"]["detail"]
        assert "7d window at 96 %" in by_account["idle@example.com"]["detail"]
        assert by_account["busy@example.com"]["text"].startswith("ProxyHub: Claude account busy@example.com is at 93 % of its 5h window")

        # The 5-hour window resets: the episode ends; the next time it runs high, it alerts again.
        fake.set_account_utilization("claude", served.account_id, five_hour=0.05, seven_day=0.40)
        assert post(b.url, key).status_code == 200
        eventually(lambda: AlertEvent.objects.filter(credential="busy@example.com", resolved_at__isnull=False).exists())
        fake.set_account_utilization("claude", served.account_id, five_hour=0.91, seven_day=0.40)
        assert post(a.url, key).status_code == 200
        eventually(lambda: len(receiver.events("window_high")) == 3)
        time.sleep(1)
        assert len(receiver.events("window_high")) == 3
    assert_no_secret(receiver.raw, secrets_of(served, idle, keys=(key,)))


# --- budget_80 / budget_100: the function the per-key limits call --------------------------------


def test_key_budget_alerts_at_80_and_100_percent_once_per_period(alerting, db):
    alerts.key_budget("sk-ph-Ab3dE6", "monthly_tokens", 500, 1000, "2026-12")
    alerts.key_budget("sk-ph-Ab3dE6", "monthly_tokens", 850, 1000, "2026-12")
    alerts.reset()  # another process: its own memory is empty, the database de-duplicates
    alerts.key_budget("sk-ph-Ab3dE6", "monthly_tokens", 900, 1000, "2026-12")
    alerts.key_budget("sk-ph-Ab3dE6", "monthly_tokens", 1000, 1000, "2026-12")
    alerts.key_budget("sk-ph-Ab3dE6", "monthly_tokens", 1200, 1000, "2026-12")
    assert alerts.wait_idle()
    # Each alert is delivered on its own thread: they may arrive in either order.
    assert sorted(b["event"] for b in alerting.bodies) == ["budget_100", "budget_80"]
    first, full = sorted(alerting.bodies, key=lambda b: b["event"] != "budget_80")
    assert first["key_prefix"] == "sk-ph-Ab3dE6" and first["provider"] is None and first["credential"] is None
    assert first["detail"] == "monthly_tokens: 850 of 1,000 (85 %), 2026-12"
    assert "key sk-ph-Ab3dE6… has used 85 % of its monthly_tokens limit" in first["text"]
    assert "has used up its monthly_tokens limit" in full["text"]

    alerts.key_budget("sk-ph-Ab3dE6", "monthly_tokens", 820, 1000, "2027-01")  # a new month: a new episode
    assert alerts.wait_idle()
    assert [b["event"] for b in alerting.bodies][2:] == ["budget_80"]
    assert not AlertEvent.objects.filter(open_key__contains=":2026-12").exists()

    alerts.key_budget("sk-ph-Ab3dE6", "monthly_tokens", 820, 5000, "2027-01")  # the limit was raised
    assert alerts.wait_idle()
    assert not AlertEvent.objects.filter(open_key__isnull=False).exists()
    alerts.key_budget("sk-ph-Ab3dE6", "daily_tokens", 100, 100, "2027-01-02")  # straight to 100 %: one alert
    assert alerts.wait_idle()
    assert [b["event"] for b in alerting.bodies][3:] == ["budget_100"]
    assert AlertEvent.objects.count() == 4


# --- the admin history --------------------------------------------------------------


def test_the_admin_lists_alert_history_read_only_with_filters(alerting, admin_client):
    alerts.key_budget("sk-ph-Zz9yX8", "monthly_cost", 95, 100, "2026-12")
    assert alerts.wait_idle()
    page = admin_client.get("/admin/credentials/alertevent/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "sk-ph-Zz9yX8" in html and "Sent (1 attempt)" in html
    assert "event__exact=budget_80" in html and "episode_state=open" in html  # filters
    assert admin_client.get("/admin/credentials/alertevent/?episode_state=ended").content.decode().count(
        "sk-ph-Zz9yX8") == 0
    row = AlertEvent.objects.get()
    assert admin_client.get("/admin/credentials/alertevent/add/").status_code == 403
    change = admin_client.post(f"/admin/credentials/alertevent/{row.pk}/change/", {"detail": "edited"})
    assert change.status_code == 403 and AlertEvent.objects.get().detail != "edited"


def test_a_delivery_left_behind_by_a_dead_process_is_resumed_once(alerting, db):
    from datetime import timedelta

    from django.utils import timezone

    lapsed = timezone.now() - timedelta(seconds=5)
    row = AlertEvent.objects.create(event="window_high", open_key="window_high:7:5h", episode="window_high:7:5h",
                                    text="ProxyHub: account x is at 95 % of its 5h window.", webhook_status="pending",
                                    webhook_attempts=1, email_status="off", lease_until=lapsed)
    live = AlertEvent.objects.create(event="window_high", open_key="window_high:8:5h", episode="window_high:8:5h",
                                     webhook_status="pending", email_status="off",
                                     lease_until=timezone.now() + timedelta(minutes=1))
    alerts.deliver(row.pk, lease=timezone.now())  # a stale holder's lease no longer matches: nothing sent
    alerts.check_once()
    alerts.check_once()  # a second process's check: the first one holds or finished the delivery
    assert alerts.wait_idle()
    assert [b["episode"] for b in alerting.bodies] == ["window_high:7:5h"]
    row.refresh_from_db()
    assert (row.webhook_status, row.webhook_attempts, row.lease_until) == ("sent", 2, None)
    assert AlertEvent.objects.get(pk=live.pk).webhook_status == "pending"  # another process is on it

