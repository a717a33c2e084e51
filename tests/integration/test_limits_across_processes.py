"""Key limits hold across two real server processes, with the database and with Redis as the shared store."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, Iterator

import httpx
import pytest
from django.conf import settings

from tests.conftest import REDIS_TEST_PREFIX
from tests.servers import Server, server_env, session_database_url, two_daphnes

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def servers(shared_backend: str, catalog_seeded: None, fake: Any) -> Iterator[tuple[Server, Server]]:
    env = server_env(fake, session_database_url(), REDIS_URL=settings.REDIS_URL,
                     PROXYHUB_REDIS_PREFIX=REDIS_TEST_PREFIX, PROXYHUB_BACKGROUND_REFRESH="false")
    with two_daphnes(env) as pair:
        yield pair


def post(server: Server, key: str, body: dict[str, Any] = BODY, path: str = "/v1/messages") -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers={"x-api-key": key}, timeout=30)


def test_concurrency_daily_tokens_and_cost_hold_across_two_processes(servers, api_key_factory, credential_factory,
                                                                     fake):
    from credentials.models import Model

    a, b = servers
    credential_factory()
    Model.objects.filter(name="claude-sonnet-4-6").update(input_price=Decimal("3"), output_price=Decimal("15"))
    # One slot: a slow request on A holds it, B refuses at once; B gets it back when A's request ends.
    slotted, raw_slotted = api_key_factory("slotted")
    slotted.concurrency_limit = 1
    slotted.save()
    fake.add_fault("claude", "slow", delay=2.0)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, a, raw_slotted)
        deadline = time.monotonic() + 10
        while not fake.requests("claude"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused = post(b, raw_slotted)
        assert first.result().status_code == 200
    assert refused.status_code == 429 and "1 concurrent requests" in refused.json()["error"]["message"]
    assert post(b, raw_slotted).status_code == 200
    # Tokens per day: what A's request used is counted by B.
    daily, raw_daily = api_key_factory("daily")
    daily.daily_token_limit = 1
    daily.save()
    assert post(a, raw_daily).status_code == 200
    deadline = time.monotonic() + 10
    while (r := post(b, raw_daily)).status_code == 200:
        assert time.monotonic() < deadline, "B never saw A's tokens"
        time.sleep(0.1)
    assert r.status_code == 429 and "1 tokens per day" in r.json()["error"]["message"]
    # Cost per month: a tiny limit, spent on B, refused on A.
    spender, raw_spender = api_key_factory("spender")
    spender.monthly_cost_limit = Decimal("0.01")
    spender.save()
    for _ in range(200):  # each request costs a little; at most a few hundred before the cent is spent
        r = post(b if _ % 2 else a, raw_spender)
        if r.status_code == 429:
            break
    assert r.status_code == 429 and "monthly cost limit of $0.01" in r.json()["error"]["message"]


def test_fair_share_holds_across_two_processes(servers, api_key_factory, credential_factory, fake):
    from credentials.models import Credential

    a, b = servers
    credential = credential_factory()
    greedy, raw_greedy = api_key_factory("greedy")
    greedy.pool_share_percent = Decimal("30")
    greedy.save()
    _, raw_plain = api_key_factory("plain")
    reset = int(time.time()) + 1200
    fake.set_account_utilization("claude", credential.account_id, 0.5, 0.1, five_hour_reset=reset)
    assert [post(a, raw_greedy).status_code for _ in range(3)] == [200] * 3  # below the threshold: no limit
    fake.set_account_utilization("claude", credential.account_id, 0.95, 0.1, five_hour_reset=reset)
    assert post(b, raw_plain).status_code == 200  # its headers bring the pressure to the database
    deadline = time.monotonic() + 15
    while Credential.objects.get(pk=credential.pk).windows.get("5h", {}).get("utilization", 0) < 0.95:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # B counts what the greedy key used on A (3 of 4 requests: past 30 %) once its snapshot shows the pressure.
    while (r := post(b, raw_greedy)).status_code == 200:
        assert time.monotonic() < deadline, "B never held the greedy key back"
        time.sleep(0.2)
    assert r.status_code == 429 and "fair share of 30%" in r.json()["error"]["message"]
    assert 1100 <= int(r.headers["retry-after"]) <= 1201
    assert post(a, raw_plain).status_code == 200  # a key without a share is not held back
