"""Refresh on 401, failover on 429, cooldowns and the no-credential answers."""
from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def key(api_key_factory):
    return api_key_factory()[1]


def post(gateway, key, body=BODY, path="/v1/messages"):
    return httpx.post(gateway + path, json=body, headers={"x-api-key": key, "anthropic-version": "2023-06-01"}, timeout=30)


def test_expired_token_is_refreshed_once_and_the_request_retried(gateway, key, credential_factory, fake):
    credential = credential_factory()
    old_access, old_refresh = credential.access_token, credential.refresh_token
    fake.expire_access_token(old_access)

    r = post(gateway, key)
    assert r.status_code == 200, r.text
    credential.refresh_from_db()
    assert credential.access_token != old_access
    assert credential.refresh_token != old_refresh  # rotated and saved
    assert credential.token_version == 1
    assert len(fake.token_requests("claude")) == 1
    assert fake.token_requests("claude")[0].json["grant_type"] == "refresh_token"


def test_token_near_expiry_is_refreshed_before_use(gateway, key, credential_factory, fake):
    credential = credential_factory(expires_in=60)
    assert post(gateway, key).status_code == 200
    credential.refresh_from_db()
    assert credential.token_version == 1
    assert fake.requests("claude")[-1].headers["authorization"] == f"Bearer {credential.access_token}"


def test_failed_refresh_marks_needs_relogin_and_fails_over(gateway, key, credential_factory, fake):
    broken = credential_factory()
    healthy = credential_factory()
    fake.expire_access_token(broken.access_token)
    fake.add_fault("claude_token", "token_error", times=1,
                   status=400, body={"error": "invalid_grant", "error_description": "Refresh token revoked"})
    statuses = [post(gateway, key).status_code for _ in range(2)]
    assert statuses == [200, 200]
    broken.refresh_from_db()
    assert broken.status == "needs_relogin"
    assert all(r.headers["authorization"] == f"Bearer {healthy.access_token}"
               for r in fake.requests("claude") if r.status == 200)


def test_rate_limited_credential_cools_down_and_the_next_one_serves(gateway, key, credential_factory, fake):
    first = credential_factory()
    second = credential_factory()
    fake.add_fault("claude", "rate_limited", token=first.access_token, times=5, retry_after=120)
    for _ in range(3):
        assert post(gateway, key).status_code == 200
    first.refresh_from_db()
    assert first.cooldown_until is not None
    served = [r.headers["authorization"] for r in fake.requests("claude") if r.status == 200]
    assert set(served) == {f"Bearer {second.access_token}"}
    records = wait_for_usage(3)
    assert {r.credential_id for r in records} == {second.pk}


def test_all_credentials_cooling_gives_429_with_retry_after(gateway, key, credential_factory, fake):
    import time

    reset = int(time.time()) + 3600
    a, b = credential_factory(), credential_factory()
    for c in (a, b):
        fake.add_fault("claude", "rate_limited", token=c.access_token, times=1, retry_after=30, unified_reset=reset)
    r = post(gateway, key)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 3000
    assert r.headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert r.json()["error"]["type"] == "rate_limit_error"
    again = post(gateway, key)  # answered from the pool without calling upstream
    assert again.status_code == 429
    assert len(fake.requests("claude")) == 2


def test_overloaded_upstream_fails_over(gateway, key, credential_factory, fake):
    a, b = credential_factory(), credential_factory()
    fake.add_fault("claude", "overloaded", token=a.access_token, times=1)
    fake.add_fault("claude", "overloaded", token=b.access_token, times=1)
    r = post(gateway, key)
    assert r.status_code == 502
    assert r.json()["type"] == "error"


def test_no_connected_credential_gives_503_with_a_hint(gateway, key):
    r = post(gateway, key)
    assert r.status_code == 503
    assert "connect" in r.json()["error"]["message"]


def test_bad_request_from_upstream_is_passed_back_without_cooldown(gateway, key, credential_factory):
    credential = credential_factory()
    r = post(gateway, key, {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": ""}]})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    credential.refresh_from_db()
    assert credential.cooldown_until is None


def test_mid_stream_upstream_error_reaches_the_client_as_an_error_event(gateway, key, credential_factory, fake):
    credential_factory()
    fake.add_fault("claude", "mid_stream_error", times=1)
    client = anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(**BODY) as s:
            "".join(s.text_stream)
    assert "overloaded" in str(info.value).lower()
    client.close()


def test_upstream_dropping_mid_stream_ends_with_an_error_event(gateway, key, credential_factory, fake):
    credential_factory()
    fake.add_fault("claude", "drop_mid_stream", times=1)
    with httpx.stream("POST", gateway + "/v1/messages", json={**BODY, "stream": True},
                      headers={"x-api-key": key}) as r:
        text = r.read().decode()
    assert r.status_code == 200
    assert text.rstrip().split("\n\n")[-1].startswith("event: error")
    [record] = wait_for_usage(1)
    assert record.outcome == "upstream_error"


def test_client_disconnect_cancels_the_upstream_stream(gateway, key, credential_factory, fake):
    credential_factory()
    fake.add_fault("claude", "slow", times=1, delay=0.5)
    with httpx.stream("POST", gateway + "/v1/messages", json={**BODY, "stream": True},
                      headers={"x-api-key": key}) as r:
        for line in r.iter_lines():
            if line.startswith("event: message_start"):
                break
    import time

    deadline = time.monotonic() + 5
    while fake.cancelled_streams("claude") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.cancelled_streams("claude") == 1
    [record] = wait_for_usage(1)
    assert record.outcome == "client_cancelled"


def test_a_credentials_proxy_carries_its_upstream_calls_and_refreshes(gateway, key, credential_factory, fake):
    from urllib.parse import urlsplit

    from tests.fakes.proxy import FakeProxy

    proxy = FakeProxy().start()
    try:
        credential = credential_factory(proxy_url=proxy.url)
        fake.expire_access_token(credential.access_token)
        r = post(gateway, key)
        assert r.status_code == 200, r.text
    finally:
        proxy.stop()
    upstream = urlsplit(fake.claude_base_url).netloc
    token_endpoint = urlsplit(fake.claude_token_url).netloc
    assert upstream in proxy.seen() and token_endpoint in proxy.seen()


def _served_tokens(fake):
    return [r.headers["authorization"].split()[1] for r in fake.requests("claude") if r.status == 200]


def test_sticky_strategy_keeps_a_claude_code_session_on_one_account(gateway, key, credential_factory, fake, settings):
    import json as _json

    settings.PROXYHUB_POOL_STRATEGY = "sticky"
    accounts = [credential_factory() for _ in range(3)]

    def session_body(session):
        user_id = _json.dumps({"device_id": "d", "account_uuid": "a", "session_id": session})
        return {**BODY, "metadata": {"user_id": user_id}}

    for _ in range(4):
        assert post(gateway, key, session_body("conv-1")).status_code == 200
    assert len(set(_served_tokens(fake))) == 1
    home = _served_tokens(fake)[0]
    fake.reset()
    fake.add_fault("claude", "rate_limited", token=home, times=1, retry_after=600)
    assert post(gateway, key, session_body("conv-1")).status_code == 200
    moved = _served_tokens(fake)
    assert moved and home not in moved  # moved at once, on the same request
    spread = set()
    for i in range(12):
        post(gateway, key, session_body(f"conv-spread-{i}"))
    spread = set(_served_tokens(fake))
    assert len(spread) > 1 and {a.access_token for a in accounts} >= spread


def test_priority_strategy_fills_the_preferred_account_first(gateway, key, credential_factory, fake, settings):
    settings.PROXYHUB_POOL_STRATEGY = "priority"
    credential_factory(priority=0)
    preferred = credential_factory(priority=10)
    for _ in range(3):
        assert post(gateway, key).status_code == 200
    assert set(_served_tokens(fake)) == {preferred.access_token}


def test_round_robin_spreads_requests_over_accounts(gateway, key, credential_factory, fake):
    accounts = [credential_factory() for _ in range(2)]
    for _ in range(4):
        assert post(gateway, key).status_code == 200
    assert sorted(_served_tokens(fake)) == sorted([a.access_token for a in accounts] * 2)


def test_background_refresh_renews_tokens_before_they_expire(gateway, credential_factory, fake):
    from asgiref.sync import async_to_sync

    from credentials.refresh import aclose_client, arefresh_due

    soon = credential_factory(expires_in=120)
    later = credential_factory(expires_in=7200)
    dead = credential_factory(expires_in=60)
    fake.expire_refresh_token(dead.refresh_token)

    async def run():
        try:
            return await arefresh_due(300)
        finally:
            await aclose_client()

    outcomes = async_to_sync(run)()
    assert outcomes == {soon.pk: "refreshed", dead.pk: "needs re-login"}
    for c in (soon, later, dead):
        c.refresh_from_db()
    assert soon.token_version == 1 and later.token_version == 0
    assert dead.status == "needs_relogin"


def test_no_token_or_key_reaches_a_log_line(gateway, key, credential_factory, fake, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    broken, healthy = credential_factory(), credential_factory()
    fake.expire_access_token(broken.access_token)
    fake.expire_refresh_token(broken.refresh_token)
    fake.add_fault("claude", "rate_limited", token=healthy.access_token, times=1)
    post(gateway, key)
    post(gateway, "sk-ph-not-a-real-key-but-secret-looking")
    text = caplog.text
    assert "needs re-login" in text or "failed" in text  # the failures were logged...
    for secret in (broken.access_token, broken.refresh_token, healthy.access_token, key,
                   "sk-ph-not-a-real-key-but-secret-looking"):
        assert secret not in text  # ...without a secret


def test_claude_refresh_falls_back_to_the_api_host_when_the_token_host_is_down(
        gateway, key, credential_factory, fake, settings):
    from tests.servers import free_port

    settings.PROXYHUB_CLAUDE_TOKEN_FALLBACK_URL = settings.PROXYHUB_CLAUDE_TOKEN_URL
    settings.PROXYHUB_CLAUDE_TOKEN_URL = f"http://127.0.0.1:{free_port()}/v1/oauth/token"  # nothing listens
    credential = credential_factory()
    fake.expire_access_token(credential.access_token)
    assert post(gateway, key).status_code == 200
    credential.refresh_from_db()
    assert credential.token_version == 1 and len(fake.token_requests("claude")) == 1


def test_an_error_event_right_after_message_start_fails_over(gateway, key, credential_factory, fake):
    overloaded, healthy = credential_factory(), credential_factory()
    fake.add_fault("claude", "mid_stream_error", token=overloaded.access_token, times=2, after=1)
    client = anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0)
    for _ in range(2):
        with client.messages.stream(**BODY) as s:
            assert "".join(s.text_stream) == "Echo: hi"
    client.close()
    overloaded.refresh_from_db()
    assert overloaded.cooldown_until is not None
    served = [r.headers["authorization"] for r in fake.requests("claude") if r.status == 200]
    assert served[-1] == f"Bearer {healthy.access_token}"


def test_a_dropped_connection_is_retried_once_without_a_cooldown(gateway, key, credential_factory, fake):
    credential = credential_factory()
    fake.add_fault("claude", "drop_mid_stream", times=1)  # a non-stream request: the connection is cut
    r = post(gateway, key)
    assert r.status_code == 200, r.text
    credential.refresh_from_db()
    assert credential.cooldown_until is None
    assert len(fake.requests("claude")) == 2
