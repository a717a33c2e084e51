"""The wrong-key throttle behind a load balancer (PROXYHUB_TRUSTED_PROXIES), through a real server: the
production command (deploy/serve, uvicorn) and daphne. The test plays the balancer: it connects from
127.0.0.1 and names the client in X-Forwarded-For, as nginx does (deploy/nginx.conf)."""
from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from tests.servers import deploy_serve, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
WRONG = "sk-ph-" + "x" * 40


def wrong_key(url: str, forwarded_for: str) -> int:
    return httpx.post(url + "/v1/messages", json=BODY, timeout=30, headers={
        "x-api-key": WRONG, "anthropic-version": "2023-06-01", "x-forwarded-for": forwarded_for}).status_code


def serve(fake: Any, server: str, **extra: str) -> Any:
    # Three failures per address, on the database's shared store: short, and nothing left in Redis.
    env = server_env(fake, session_database_url(), REDIS_URL="", PROXYHUB_BAD_KEY_LIMIT="3",
                     PROXYHUB_BACKGROUND_REFRESH="false", **extra)
    env.pop("FORWARDED_ALLOW_IPS", None)  # deploy/serve must not depend on uvicorn's own variable
    return deploy_serve(env, server=server)


@pytest.fixture(params=["uvicorn", "daphne"])
def server_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_behind_a_trusted_balancer_each_client_is_throttled_on_its_own(server_kind, fake):
    with serve(fake, server_kind, PROXYHUB_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8") as server:
        assert [wrong_key(server.url, "198.51.100.1") for _ in range(4)] == [401, 401, 401, 429]
        # Another teammate behind the same balancer still gets 401, not the first one's 429.
        assert wrong_key(server.url, "198.51.100.2") == 401
        # What the client wrote itself sits left of the address the balancer appended: it changes nothing.
        assert wrong_key(server.url, "198.51.100.2, 198.51.100.1") == 429
        assert wrong_key(server.url, "198.51.100.1, 198.51.100.2") == 401
        # A trusted hop between (a 10.x proxy) is skipped: the client is the address before it.
        assert wrong_key(server.url, "198.51.100.1, 10.1.2.3") == 429
        # IPv6 clients count per /64: stepping through its own block gives a client no fresh count.
        assert [wrong_key(server.url, f"2001:db8:0:7::{n}") for n in range(1, 5)] == [401, 401, 401, 429]
        assert wrong_key(server.url, "2001:db8:0:8::1") == 401


def test_without_trusted_proxies_a_forged_header_does_not_dodge_the_throttle(server_kind, fake):
    with serve(fake, server_kind) as server:
        statuses = [wrong_key(server.url, f"198.51.100.{n}") for n in range(1, 6)]
        assert statuses == [401, 401, 401, 429, 429]  # all counted against 127.0.0.1, the real peer


def test_metrics_are_not_for_a_client_behind_a_proxy_on_loopback(settings):
    from django.test import Client

    from proxyhub.client_ip import parse_trusted

    settings.PROXYHUB_TRUSTED_PROXIES = parse_trusted(["127.0.0.1"])  # nginx on the same host
    assert Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200  # a scraper on the host itself
