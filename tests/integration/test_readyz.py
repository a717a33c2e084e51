"""/readyz: 200 when the database answers and every provider with accounts has a usable one; else 503 saying why."""
from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from tests.servers import daphne, server_env

pytestmark = pytest.mark.django_db(transaction=True)


def readyz() -> tuple[int, dict]:
    response = Client().get("/readyz")
    return response.status_code, response.json()


def test_ready_with_no_accounts_and_with_one_usable_account_per_provider(credential_factory):
    status, body = readyz()
    assert (status, body["status"], body["problems"], body["providers"]) == (200, "ready", [], {})
    credential_factory("claude", cooldown_until=timezone.now() + timedelta(minutes=5))
    credential_factory("claude")
    credential_factory("codex")
    status, body = readyz()
    assert (status, body["status"], body["database"]) == (200, "ready", "ok")
    assert body["providers"]["claude"] | {"cooling_until": None} == {
        "ready": 1, "cooling": 1, "needs_relogin": 0, "disabled": 0, "cooling_until": None}


def test_a_provider_whose_accounts_are_all_unusable_makes_it_unready_and_says_why(credential_factory):
    credential_factory("claude")
    credential_factory("codex", status="needs_relogin", email="secret-person@example.com")
    credential_factory("codex", status="disabled")
    status, body = readyz()
    assert (status, body["status"]) == (503, "unavailable")
    assert body["problems"] == ["ChatGPT (Codex): 2 accounts, none usable (1 needs re-login, 1 disabled)"]
    assert "secret-person" not in str(body)  # the probe is unauthenticated: counts, never who


def test_cooling_accounts_are_named_with_the_end_of_their_cooldown(credential_factory):
    soon = timezone.now() + timedelta(seconds=90)
    credential_factory("claude", cooldown_until=soon)
    credential_factory("claude", cooldown_until=soon + timedelta(minutes=10))
    status, body = readyz()
    assert status == 503
    until = soon.isoformat(timespec="seconds")
    assert body["problems"] == [f"Claude: 2 accounts, none usable (2 cooling down until {until})"]
    assert body["providers"]["claude"]["cooling_until"] == soon.isoformat()


def test_an_unreachable_database_makes_it_unready_while_healthz_still_answers(fake):
    # Nothing listens on port 1: every connection attempt is refused.
    env = server_env(fake, "postgres://postgres:hunter2@127.0.0.1:1/proxyhub", PROXYHUB_BACKGROUND_REFRESH="false")
    with daphne(env) as server:
        ready = httpx.get(server.url + "/readyz", timeout=30)
        again = httpx.get(server.url + "/readyz", timeout=30)
        health = httpx.get(server.url + "/healthz", timeout=30)
    assert ready.status_code == again.status_code == 503 and health.status_code == 200
    # Logged once when it changes, not as an error per probe.
    assert server.output.count("not ready: database unreachable") == 1
    assert "Service Unavailable: /readyz" not in server.output
    assert ready.json()["problems"] == ["database unreachable (OperationalError)"]
    assert "hunter2" not in ready.text and "127.0.0.1" not in ready.text
