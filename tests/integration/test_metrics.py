"""/metrics: prometheus_client in multiprocess mode, so one scrape reports every worker of a host."""
from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for_usage
from tests.servers import daphne, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "Count me"}]}
SONNET = {"provider": "claude", "model": "claude-sonnet-4-6", "endpoint": "messages", "status": "200"}


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = {(s.name, frozenset(s.labels.items())): s.value
                        for family in text_string_to_metric_families(text) for s in family.samples}

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def local_scrape() -> Scrape:
    response = Client().get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.content.decode())


def test_metrics_count_requests_tokens_and_time_them_by_model(gateway, api_key_factory, credential_factory, fake):
    credential_factory("claude")
    credential_factory("codex", status="needs_relogin")
    _, key = api_key_factory(models=["claude-*"])
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    before = local_scrape()
    assert httpx.post(gateway + "/v1/messages", json=BODY, headers=headers, timeout=30).status_code == 200
    with httpx.stream("POST", gateway + "/v1/messages", json={**BODY, "model": "claude-sonnet-4-6(low)",
                      "stream": True, "max_tokens": 2000}, headers=headers, timeout=30) as streamed:
        assert streamed.status_code == 200 and "message_stop" in streamed.read().decode()
    refused = httpx.post(gateway + "/v1/messages", json={**BODY, "model": "gpt-5.5"}, headers=headers, timeout=30)
    assert refused.status_code == 403
    rows = wait_for_usage(3)
    ok = [r for r in rows if r.outcome == "ok"]
    after = local_scrape()

    def delta(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    assert delta("proxyhub_requests_total", provider="claude", endpoint="messages", outcome="ok", status="200") == 2
    # Refused before a model was resolved: no provider, and the model the client typed is not a label.
    assert delta("proxyhub_requests_total", provider="none", endpoint="messages", outcome="rejected",
                 status="403") == 1
    assert delta("proxyhub_tokens_total", provider="claude", kind="input") == sum(r.input_tokens for r in ok) > 0
    assert delta("proxyhub_tokens_total", provider="claude", kind="output") == sum(r.output_tokens for r in ok) > 0
    # Both requests are timed under the model's base name: "(low)" is a level, not a model.
    assert delta("proxyhub_request_duration_seconds_count", **SONNET) == 2
    assert delta("proxyhub_request_duration_seconds_bucket", **SONNET, le="+Inf") == 2
    assert delta("proxyhub_request_duration_seconds_sum", **SONNET) == pytest.approx(
        sum(r.duration_ms for r in ok) / 1000)
    assert delta("proxyhub_request_ttfb_seconds_count", **SONNET) == 2
    assert delta("proxyhub_request_duration_seconds_count", provider="none", model="none", endpoint="messages",
                 status="403") == 1
    # Other tests of the session serve gpt-5.5 for real: look only at the series this test added.
    added = set(after.samples) - set(before.samples)
    assert not any("(low)" in str(labels) or "gpt-5.5" in str(labels) for _, labels in added)
    assert after("proxyhub_credentials", provider="claude", state="ready") == 1
    assert after("proxyhub_credentials", provider="codex", state="needs_relogin") == 1
    assert ("proxyhub_requests_in_flight", frozenset()) in after.samples
    assert after("proxyhub_requests_in_flight") == 0
    assert "# TYPE proxyhub_request_ttfb_seconds histogram" in after.text
    assert key not in after.text and ok[0].key_prefix not in after.text  # no key, not even its prefix


def test_metrics_are_for_loopback_or_the_token_holder(settings):
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 403
    settings.PROXYHUB_METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    allowed = Client(REMOTE_ADDR="10.1.2.3").get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    # A gauge every scrape has (a counter shows only once something counted it, in any test order).
    assert allowed.status_code == 200 and "# TYPE proxyhub_requests_in_flight gauge" in allowed.content.decode()


def test_one_scrape_reports_every_worker_sharing_the_directory(tmp_path, catalog_seeded, fake, api_key_factory,
                                                               credential_factory):
    credential_factory()
    _, key = api_key_factory()
    headers = {"x-api-key": key}
    # Two workers of one host: the same PROMETHEUS_MULTIPROC_DIR (PROXYHUB_METRICS_DIR_PID="": not a private one).
    env = server_env(fake, session_database_url(), PROXYHUB_BACKGROUND_REFRESH="false",
                     PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), PROXYHUB_METRICS_DIR_PID="")
    with daphne(env) as a, daphne(env) as b:
        for url, n in ((a.url, 2), (b.url, 3)):
            for _ in range(n):
                assert httpx.post(url + "/v1/messages", json=BODY, headers=headers, timeout=30).status_code == 200
        wait_for_usage(5)
        fake.add_fault("claude", "slow", times=1, delay=0.25)  # a stream held open on b while a is scraped
        streaming = threading.Thread(target=_stream, args=(b.url, headers), daemon=True)
        streaming.start()
        in_flight = _wait_for(lambda: _scrape(a.url)("proxyhub_requests_in_flight") == 1)
        streaming.join(30)
        wait_for_usage(6)
        # Each worker writes its counts to the shared files about once a second.
        all_in = _wait_for(lambda: _scrape(a.url)("proxyhub_request_duration_seconds_count", **SONNET) == 6)
        totals = _scrape(a.url)
        from_b = _scrape(b.url)
    assert in_flight, "a did not see the stream in flight on b"
    assert all_in, totals.text
    assert totals("proxyhub_requests_total", provider="claude", endpoint="messages", outcome="ok", status="200") == 6
    assert totals("proxyhub_request_ttfb_seconds_count", **SONNET) == 6
    assert totals("proxyhub_requests_in_flight") == 0
    assert from_b("proxyhub_requests_total", provider="claude", endpoint="messages", outcome="ok", status="200") == 6


def _stream(url: str, headers: dict[str, str]) -> None:
    with httpx.stream("POST", url + "/v1/messages", json={**BODY, "stream": True}, headers=headers, timeout=30) as r:
        r.read()


def _scrape(url: str) -> Scrape:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    return Scrape(response.text)


def _wait_for(condition: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
