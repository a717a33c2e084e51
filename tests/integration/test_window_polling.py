"""Live windows for every account: real server processes poll the fakes' usage endpoints, and routing uses them."""
from __future__ import annotations

import io
import json
import re
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from credentials.models import Credential
from credentials.window_state import window_list
from tests.servers import daphne, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
RESET = 1_900_000_000  # 2030-03-17T17:46:40Z


def polling_env(fake: Any, period: float, **extra: str) -> dict[str, str]:
    return server_env(fake, session_database_url(), PROXYHUB_WINDOW_POLL_SECONDS=str(period),
                      PROXYHUB_BACKGROUND_REFRESH="false", **extra)


def windows_of(credential: Credential) -> dict[str, float]:
    """{name: used_percent} as stored now."""
    return {w["name"]: w["used_percent"] for w in window_list(Credential.objects.get(pk=credential.pk).windows)}


def served_by(fake: Any) -> list[str]:
    """The access token of each message the fake Claude answered, in order."""
    return [r.headers["authorization"].removeprefix("Bearer ") for r in fake.requests("claude") if r.status == 200]


def test_idle_accounts_of_both_providers_get_their_windows_and_pool_status_shows_them(
        catalog_seeded, fake, credential_factory):
    claude = credential_factory("claude")
    codex = credential_factory("codex")
    fake.set_account_utilization("claude", claude.account_id, 0.42, 0.35, scoped={"sonnet": 0.56},
                                 five_hour_reset=RESET)
    fake.set_account_utilization("codex", codex.account_id, 0.10, 0.87)
    fake.expire_access_token(codex.access_token)  # the poll must refresh it first, then ask again

    with daphne(polling_env(fake, 30)):
        assert fake.wait_for(lambda: windows_of(claude) and windows_of(codex), timeout=15)

    assert windows_of(claude) == {"5h": 42.0, "7d": 35.0, "7d_sonnet": 56.0}
    assert windows_of(codex) == {"5h": 10.0, "7d": 87.0}
    assert fake.requests("claude") == [] and fake.requests("codex") == []  # no window was spent to learn this
    [claude_poll] = fake.requests("claude_usage")
    assert claude_poll.headers["anthropic-beta"] == "oauth-2025-04-20"
    assert claude_poll.headers["authorization"] == f"Bearer {claude.access_token}"
    codex_polls = fake.requests("codex_usage")
    assert [r.status for r in codex_polls] == [401, 200]
    assert {r.headers["chatgpt-account-id"] for r in codex_polls} == {codex.account_id}
    assert len(fake.token_requests("codex")) == 1
    codex.refresh_from_db()
    assert codex.token_version == 1 and codex.status == Credential.Status.ACTIVE

    out = io.StringIO()
    call_command("pool_status", "--format", "json", stdout=out)
    entries = {e["id"]: e for e in json.loads(out.getvalue())}
    assert entries[claude.pk] == {
        "id": claude.pk, "provider": "claude", "label": claude.label, "state": "ready", "plan": None, "groups": [],
        "windows": [{"name": "5h", "used_percent": 42.0, "resets_at": "2030-03-17T17:46:40+00:00"},
                    {"name": "7d", "used_percent": 35.0, "resets_at": entries[claude.pk]["windows"][1]["resets_at"]},
                    {"name": "7d_sonnet", "used_percent": 56.0,
                     "resets_at": entries[claude.pk]["windows"][1]["resets_at"]}],
        "cooling_until": None, "last_error": None,
    }
    assert entries[codex.pk]["plan"] == "plus"  # learned from the usage answer: the factory set none


def test_two_processes_poll_each_account_once_per_period(catalog_seeded, fake, credential_factory):
    accounts = [credential_factory("claude") for _ in range(3)] + [credential_factory("codex")]
    # Slow answers keep one process busy down its list while the other starts its round: both want the
    # same accounts at once, and only the claim on the row keeps them apart.
    fake.add_fault("claude_usage", "slow", times=100, delay=0.4)
    fake.add_fault("codex_usage", "slow", times=100, delay=0.4)
    period = 2.0
    env = polling_env(fake, period)

    with daphne(env), daphne(env):
        time.sleep(5.5)

    calls: dict[str, list[float]] = defaultdict(list)
    for name in ("claude_usage", "codex_usage"):
        for r in fake.requests(name):
            calls[r.headers["authorization"]].append(r.received_at)
    assert set(calls) == {f"Bearer {c.access_token}" for c in accounts}
    for times in calls.values():
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(times) >= 2, times
        assert all(gap > period - 0.5 for gap in gaps), gaps  # never two polls of one account in a period


def test_a_failing_usage_endpoint_keeps_the_last_windows_logs_once_and_recovers(
        catalog_seeded, fake, credential_factory):
    credential = credential_factory("claude")
    fake.set_account_utilization("claude", credential.account_id, 0.30, 0.20)

    with daphne(polling_env(fake, 1)) as server:
        assert fake.wait_for(lambda: windows_of(credential).get("5h") == 30.0, timeout=10)
        fake.add_fault("claude_usage", "server_error")
        fake.add_fault("claude_usage", "not_json")
        fake.add_fault("claude_usage", "rate_limited", retry_after=60)
        fake.set_account_utilization("claude", credential.account_id, 0.65, 0.20)
        assert fake.wait_for(lambda: fake.pending_faults("claude_usage") == 0, timeout=10)
        assert windows_of(credential)["5h"] == 30.0  # three failed polls changed nothing
        assert fake.wait_for(lambda: windows_of(credential).get("5h") == 65.0, timeout=10)

    assert [r.status for r in fake.requests("claude_usage")][:4] == [200, 500, 200, 429]
    failures = re.findall(r"window poll for credential \d+ failed", server.output)
    assert failures == [f"window poll for credential {credential.pk} failed"], server.output
    assert f"window poll for credential {credential.pk} works again" in server.output
    assert credential.access_token not in server.output
    credential.refresh_from_db()
    assert credential.status == Credential.Status.ACTIVE and credential.last_error == ""


def test_after_a_poll_reports_an_account_at_97_percent_requests_go_to_the_other(
        catalog_seeded, fake, credential_factory, api_key_factory):
    busy, other = credential_factory("claude"), credential_factory("claude")
    for credential in (busy, other):
        fake.set_account_utilization("claude", credential.account_id, 0.10, 0.05)
    _, key = api_key_factory()

    with daphne(polling_env(fake, 1.5)) as server:
        send = lambda: httpx.post(server.url + "/v1/messages", json=BODY, headers={"x-api-key": key}, timeout=30)  # noqa: E731
        assert fake.wait_for(lambda: windows_of(busy) and windows_of(other), timeout=10)
        assert [send().status_code for _ in range(4)] == [200] * 4
        assert set(served_by(fake)) == {busy.access_token, other.access_token}  # both in rotation

        fake.set_account_utilization("claude", busy.account_id, 0.97, 0.05)  # while idle: only a poll can tell
        assert fake.wait_for(lambda: windows_of(busy)["5h"] == 97.0, timeout=10)
        time.sleep(2.2)  # the pool's snapshot of the accounts is at most two seconds old
        before = len(served_by(fake))
        assert [send().status_code for _ in range(6)] == [200] * 6
        assert served_by(fake)[before:] == [other.access_token] * 6

        # Nothing else ready: the account past the cap still serves.
        fake.add_fault("claude", "rate_limited", token=other.access_token, unified_reset=time.time() + 600)
        assert send().status_code == 200
        assert served_by(fake)[-1] == busy.access_token


def test_headroom_sends_requests_to_the_account_with_the_most_room(
        catalog_seeded, fake, credential_factory, api_key_factory):
    accounts = [credential_factory("claude") for _ in range(3)]
    for credential, (five_hour, seven_day) in zip(accounts, [(0.20, 0.70), (0.40, 0.30), (0.60, 0.10)]):
        fake.set_account_utilization("claude", credential.account_id, five_hour, seven_day)
    _, key = api_key_factory()

    with daphne(polling_env(fake, 30, PROXYHUB_POOL_STRATEGY="headroom")) as server:
        assert fake.wait_for(lambda: all(windows_of(c) for c in accounts), timeout=10)
        time.sleep(2.2)  # a fresh snapshot of the pool
        for _ in range(5):
            r = httpx.post(server.url + "/v1/messages", json=BODY, headers={"x-api-key": key}, timeout=30)
            assert r.status_code == 200

    # Binding windows: 70 %, 40 %, 60 %: the second account has the most room.
    assert served_by(fake) == [accounts[1].access_token] * 5


def test_pool_status_lists_every_state_and_never_a_token(db, credential_factory):
    from datetime import timedelta

    from django.utils import timezone

    ready = credential_factory("claude", plan="max")
    cooling = credential_factory("codex", cooldown_until=timezone.now() + timedelta(minutes=5),
                                 last_error="429 usage_limit_reached " + "x" * 100)
    dead = credential_factory("claude", status=Credential.Status.NEEDS_RELOGIN, last_error="refresh failed")
    ready.windows = {"5h": {"utilization": 0.5, "reset": RESET}, "status": "allowed", "plan": "max"}
    ready.save()

    out = io.StringIO()
    call_command("pool_status", "--format", "json", stdout=out)
    entries = json.loads(out.getvalue())
    assert [(e["id"], e["state"]) for e in entries] == [(ready.pk, "ready"), (dead.pk, "needs_relogin"),
                                                        (cooling.pk, "cooling")]
    assert entries[0]["windows"] == [{"name": "5h", "used_percent": 50.0, "resets_at": "2030-03-17T17:46:40+00:00"}]
    assert entries[2]["cooling_until"].startswith(str(timezone.now().year)) and entries[2]["windows"] == []
    assert entries[2]["last_error"].startswith("429 usage_limit_reached")

    table = io.StringIO()
    call_command("pool_status", stdout=table)
    text = table.getvalue()
    lines = text.splitlines()
    assert lines[0].split() == ["id", "provider", "label", "state", "plan", "groups", "windows", "cooling_until",
                                "last_error"]
    assert "5h 50% (resets Sun 17:46 UTC)" in text and "needs_relogin" in text and "…" in text
    for credential in (ready, cooling, dead):
        assert credential.access_token not in text + out.getvalue()
        assert credential.refresh_token not in text + out.getvalue()


def test_response_headers_update_the_windows_they_report_and_keep_the_polled_ones(
        gateway, fake, credential_factory, api_key_factory):
    credential = credential_factory("claude")
    credential.windows = {"5h": {"utilization": 0.10, "reset": RESET}, "7d_sonnet": {"utilization": 0.56}}
    credential.save()
    fake.set_account_utilization("claude", credential.account_id, 0.33, 0.44)
    _, key = api_key_factory()

    r = httpx.post(gateway + "/v1/messages", json=BODY, headers={"x-api-key": key}, timeout=30)

    assert r.status_code == 200
    assert fake.wait_for(lambda: windows_of(credential)["5h"] == 33.0)
    assert windows_of(credential) == {"5h": 33.0, "7d": 44.0, "7d_sonnet": 56.0}
