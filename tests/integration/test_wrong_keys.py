"""Refused keys say why (revoked, expired), and wrong keys from one address are slowed down with 429,
in the client's format, across processes, while a valid key from the same address keeps working."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterator

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.services import revoke_key
from tests.conftest import REDIS_TEST_PREFIX
from tests.servers import Server, server_env, session_database_url, two_daphnes

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}
WRONG = "sk-ph-" + "x" * 40


def messages(url: str, key: str) -> httpx.Response:
    return httpx.post(url + "/v1/messages", json=BODY, headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                      timeout=30)


def chat(url: str, key: str) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}, timeout=30)


def test_a_revoked_key_is_told_it_was_revoked(gateway, api_key_factory, credential_factory):
    credential_factory()
    api_key, key = api_key_factory()
    assert messages(gateway, key).status_code == 200  # cached as valid first: the revocation must reach the cache
    revoke_key(api_key.prefix)
    refused = messages(gateway, key)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert refused.json()["error"]["message"].startswith("This API key was revoked on ")
    openai = chat(gateway, key)
    assert openai.status_code == 401 and openai.json()["error"]["code"] == "invalid_api_key"
    assert "revoked" in openai.json()["error"]["message"]


def test_an_expired_key_is_told_it_expired(gateway, api_key_factory):
    expired_at = timezone.now() - timedelta(days=1)
    _, key = api_key_factory(expires_at=expired_at)
    refused = chat(gateway, key)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"].startswith(f"This API key expired on {expired_at:%Y-%m-%d %H:%M} UTC")


def test_an_unknown_or_missing_key_gets_the_hint(gateway):
    assert messages(gateway, WRONG).json()["error"]["message"].startswith("Invalid API key. Send your ProxyHub key")
    missing = httpx.post(gateway + "/v1/chat/completions", json=CHAT, timeout=30)
    assert missing.status_code == 401 and missing.json()["error"]["message"].startswith("Missing API key.")


def test_twenty_wrong_keys_in_a_minute_slow_the_address_down_but_not_a_valid_key(
        gateway, api_key_factory, credential_factory):
    credential_factory()
    api_key, key = api_key_factory()
    revoked, revoked_key = api_key_factory(name="old")
    revoke_key(revoked.prefix)
    statuses = [messages(gateway, WRONG if i % 2 else revoked_key).status_code for i in range(20)]
    assert statuses == [401] * 20
    throttled = messages(gateway, WRONG)
    assert throttled.status_code == 429 and 0 < int(throttled.headers["retry-after"]) <= 60
    assert throttled.json()["type"] == "error" and throttled.json()["error"]["type"] == "rate_limit_error"
    assert "wrong, revoked or expired API key" in throttled.json()["error"]["message"]
    openai = chat(gateway, revoked_key)
    assert openai.status_code == 429 and openai.json()["error"]["code"] == "rate_limit_exceeded"
    assert 0 < int(openai.headers["retry-after"]) <= 60
    # The teammate behind the same address is not locked out.
    assert messages(gateway, key).status_code == 200
    assert chat(gateway, key).status_code == 200


def test_a_limit_of_zero_turns_the_throttle_off(gateway, settings):
    settings.PROXYHUB_BAD_KEY_LIMIT = 0
    assert {messages(gateway, WRONG).status_code for _ in range(25)} == {401}


@pytest.fixture
def two_servers(shared_backend: str, catalog_seeded: None, fake: Any) -> Iterator[tuple[Server, Server]]:
    env = server_env(fake, session_database_url(), REDIS_URL=settings.REDIS_URL,
                     PROXYHUB_REDIS_PREFIX=REDIS_TEST_PREFIX, PROXYHUB_BACKGROUND_REFRESH="false")
    with two_daphnes(env) as pair:
        yield pair


def test_the_wrong_key_throttle_holds_across_two_processes(two_servers, api_key_factory, credential_factory):
    a, b = two_servers
    credential_factory()
    _, key = api_key_factory()
    statuses = [messages((a, b)[i % 2].url, WRONG).status_code for i in range(20)]
    assert statuses == [401] * 20  # ten on each: either process alone would still be far from the limit
    for server in (a, b):
        refused = chat(server.url, WRONG)
        assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
        assert messages(server.url, key).status_code == 200
