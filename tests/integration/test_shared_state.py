"""One truth across processes: two real daphne processes share limits, cooldowns, the sticky map and
changes, once with the database as the shared store and once with Redis (the ``shared_backend`` param).

The test process changes keys and the catalog through the ORM, as the admin does; its signal handlers
announce the change in the same store the servers use (the fixture points both at it).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import httpx
import pytest
from django.conf import settings

from tests.conftest import REDIS_TEST_PREFIX
from tests.servers import Server, daphne, server_env, session_database_url, two_daphnes

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT_BODY = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def servers(shared_backend: str, catalog_seeded: None, fake: Any) -> Iterator[tuple[Server, Server]]:
    """Two server processes on the test database; with Redis when the param says so; sticky routing."""
    env = server_env(fake, session_database_url(), REDIS_URL=settings.REDIS_URL,
                     PROXYHUB_REDIS_PREFIX=REDIS_TEST_PREFIX, PROXYHUB_POOL_STRATEGY="sticky",
                     PROXYHUB_BACKGROUND_REFRESH="false")
    with two_daphnes(env) as pair:
        yield pair


def post(server: Server, key: str, body: dict[str, Any] = BODY, path: str = "/v1/messages",
         **headers: str) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers={"x-api-key": key, **headers}, timeout=30)


def eventually(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held (polled); fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def served_tokens(fake: Any) -> list[str]:
    return [r.headers["authorization"].split()[1] for r in fake.requests("claude") if r.status == 200]


def test_a_rate_limit_holds_across_two_processes(servers, api_key_factory, credential_factory):
    a, b = servers
    credential_factory()
    api_key, key = api_key_factory()
    api_key.requests_per_minute = 20
    api_key.save()
    statuses = [post((a, b)[i % 2], key).status_code for i in range(20)]
    assert statuses == [200] * 20  # alternating: counted per process, 40 would pass (the measurement)
    refused = post(a, key)
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.json()["type"] == "error" and "20 requests per minute" in refused.json()["error"]["message"]
    chat = post(b, key, CHAT_BODY, "/v1/chat/completions")  # the other process, in the client's own format
    assert chat.status_code == 429 and chat.json()["error"]["code"] == "rate_limit_exceeded"
    assert 0 < int(chat.headers["retry-after"]) <= 60


def test_a_cooldown_taken_in_one_process_is_respected_by_the_other(servers, api_key_factory, credential_factory,
                                                                    fake):
    a, b = servers
    account = credential_factory()
    _, key = api_key_factory()
    assert post(a, key).status_code == 200 and post(b, key).status_code == 200  # both hold the account
    fake.add_fault("claude", "rate_limited", token=account.access_token, times=1, retry_after=120)
    assert post(a, key).status_code == 429  # a cools the only account down
    upstream_calls = len(fake.requests("claude"))

    def b_refuses() -> bool:
        return post(b, key).status_code == 429

    eventually(b_refuses, timeout=6)  # b's pool snapshot reloads within 2 s (slack for a busy machine)
    answered_by_b = len(fake.requests("claude")) - upstream_calls
    refused = post(b, key)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 60
    assert len(fake.requests("claude")) - upstream_calls == answered_by_b  # refused without calling upstream


def test_a_sticky_conversation_keeps_its_account_across_processes_and_after_a_cooldown(
        servers, api_key_factory, credential_factory, fake):
    a, b = servers
    accounts = [credential_factory() for _ in range(3)]
    _, key = api_key_factory()
    session = {"session_id": "conversation-1"}
    for server in (a, b, a, b):
        assert post(server, key, **session).status_code == 200
    home = served_tokens(fake)
    assert len(set(home)) == 1  # one account whichever process served
    fake.reset()
    fake.add_fault("claude", "rate_limited", token=home[0], times=1, retry_after=2)
    assert post(b, key, **session).status_code == 200  # b cools the home account and moves the conversation
    moved = served_tokens(fake)[-1]
    assert moved != home[0] and moved in {c.access_token for c in accounts}
    assert post(a, key, **session).status_code == 200
    assert served_tokens(fake)[-1] == moved  # a follows the move at once (the shared map)
    time.sleep(2.5)  # the home account's cooldown is over: rendezvous hashing alone would go back to it
    for server in (a, b, a, b):
        assert post(server, key, **session).status_code == 200
    assert served_tokens(fake)[-4:] == [moved] * 4


def test_a_revoked_key_is_refused_by_the_other_process_within_seconds(servers, api_key_factory,
                                                                      credential_factory):
    from accounts.services import revoke_key

    a, b = servers
    credential_factory()
    api_key, key = api_key_factory()
    assert post(a, key).status_code == 200 and post(b, key).status_code == 200  # cached in both (for 30 s)
    assert revoke_key(api_key.prefix) == 1
    # The key cache lives 30 s; a generation poll each second clears it (slack for a busy machine).
    eventually(lambda: post(b, key).status_code == 401 and post(a, key).status_code == 401, timeout=8)


def test_a_catalog_change_is_seen_by_the_other_process_within_seconds(servers, api_key_factory,
                                                                      credential_factory):
    from credentials.models import Model

    a, b = servers
    credential_factory()
    _, key = api_key_factory()
    new_model = {**BODY, "model": "claude-shared-test"}
    assert post(b, key).status_code == 200 and post(b, key, new_model).status_code == 404  # b loaded its catalog
    sonnet = Model.objects.get(name="claude-sonnet-4-6")
    sonnet.enabled = False
    sonnet.save()  # as the admin does
    eventually(lambda: post(b, key).status_code == 404, timeout=8)  # the catalog's own TTL is 10 s
    Model.objects.create(name="claude-shared-test", provider="claude", upstream_id="claude-sonnet-4-6",
                         max_output_tokens=64000)
    eventually(lambda: post(b, key, new_model).status_code == 200 and post(a, key, new_model).status_code == 200,
               timeout=8)


def test_a_server_whose_redis_is_down_keeps_serving(catalog_seeded, fake, api_key_factory, credential_factory):
    credential_factory()
    api_key, key = api_key_factory()
    api_key.requests_per_minute = 1
    api_key.save()
    env = server_env(fake, session_database_url(), REDIS_URL="redis://127.0.0.1:1/0",
                     PROXYHUB_POOL_STRATEGY="sticky", PROXYHUB_BACKGROUND_REFRESH="false")
    with daphne(env) as server:
        # Limits go unenforced (logged) and sticky routing falls back to hashing: nobody is refused.
        assert [post(server, key, session_id="s").status_code for _ in range(3)] == [200] * 3
    assert "rate limits not enforced" in server.output
