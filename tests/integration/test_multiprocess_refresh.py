"""Single-flight refresh across real server processes sharing one database."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import daphne, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSES = 3
REQUESTS = 24


def test_a_burst_on_several_processes_refreshes_an_expiring_token_exactly_once(
        catalog_seeded, fake, api_key_factory, credential_factory):
    credential = credential_factory(expires_in=30)  # inside the refresh margin: every process wants to refresh
    fake.expire_access_token(credential.access_token)
    fake.add_fault("claude_token", "token_slow", times=1, delay=0.5)  # a slow endpoint widens the race
    _, key = api_key_factory()
    env = server_env(fake, session_database_url(), PROXYHUB_BACKGROUND_REFRESH="false")
    body = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "burst"}]}

    with daphne(env) as a, daphne(env) as b, daphne(env) as c:
        urls = [a.url, b.url, c.url]

        def send(i: int) -> int:
            r = httpx.post(urls[i % PROCESSES] + "/v1/messages", json=body, headers={"x-api-key": key}, timeout=30)
            return r.status_code

        with ThreadPoolExecutor(REQUESTS) as executor:
            statuses = list(executor.map(send, range(REQUESTS)))

    assert statuses == [200] * REQUESTS
    assert len(fake.token_requests("claude")) == 1
    credential.refresh_from_db()
    assert credential.token_version == 1
    served = {r.headers["authorization"] for r in fake.requests("claude") if r.status == 200}
    assert served == {f"Bearer {credential.access_token}"}
