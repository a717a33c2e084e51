"""/metrics: Prometheus counters of what this process served, and the account pool's state."""
from __future__ import annotations

import re

import httpx
import pytest
from django.test import Client

from gateway.usage import metrics
from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)


def sample(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}{{{re.escape(wanted)}}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_metrics_count_requests_tokens_and_accounts(gateway, api_key_factory, credential_factory, fake):
    metrics.reset()
    credential_factory("claude")
    credential_factory("codex", cooldown_until=None, status="needs_relogin")
    _, key = api_key_factory(models=["claude-*"])
    body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "Count me"}]}
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    assert httpx.post(gateway + "/v1/messages", json=body, headers=headers, timeout=30).status_code == 200
    refused = httpx.post(gateway + "/v1/messages", json={**body, "model": "gpt-5.5"}, headers=headers, timeout=30)
    assert refused.status_code == 403
    ok = next(r for r in wait_for_usage(2) if r.outcome == "ok")

    response = Client().get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert sample(text, "proxyhub_requests_total", provider="claude", endpoint="messages", outcome="ok",
                  status="200") == 1
    # Refused before a model was resolved: no provider.
    assert sample(text, "proxyhub_requests_total", provider="none", endpoint="messages", outcome="rejected",
                  status="403") == 1
    assert sample(text, "proxyhub_tokens_total", provider="claude", kind="input") == ok.input_tokens > 0
    assert sample(text, "proxyhub_tokens_total", provider="claude", kind="output") == ok.output_tokens
    assert sample(text, "proxyhub_request_ttfb_seconds_count", provider="claude") == 1
    assert sample(text, "proxyhub_credentials", provider="claude", state="ready") == 1
    assert sample(text, "proxyhub_credentials", provider="codex", state="needs_relogin") == 1
    assert sample(text, "proxyhub_requests_in_flight") is None and "proxyhub_requests_in_flight 0" in text
    assert key not in text and ok.key_prefix not in text  # no key, not even its prefix


def test_metrics_are_for_loopback_or_the_token_holder(settings):
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 403
    settings.PROXYHUB_METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    allowed = Client(REMOTE_ADDR="10.1.2.3").get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert allowed.status_code == 200 and "# TYPE proxyhub_requests_total counter" in allowed.content.decode()
