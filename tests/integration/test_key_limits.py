"""Per-key limits and the usage records of refused requests."""
from __future__ import annotations

import httpx
import pytest
from django.utils import timezone

from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def post(gateway, key, body=BODY, path="/v1/messages"):
    return httpx.post(gateway + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)


def test_requests_per_minute_limit_answers_429_with_retry_after(gateway, api_key_factory, credential_factory):
    credential_factory()
    api_key, raw = api_key_factory()
    api_key.requests_per_minute = 2
    api_key.save()
    assert [post(gateway, raw).status_code for _ in range(2)] == [200, 200]
    r = post(gateway, raw, path="/v1/chat/completions", body={"model": "claude-sonnet-4-6", "messages": [
        {"role": "user", "content": "hi"}]})
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 60
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    _, other = api_key_factory("bob")
    assert post(gateway, other).status_code == 200  # the limit is per key


def test_monthly_token_budget_is_enforced(gateway, api_key_factory, credential_factory):
    from gateway.models import UsageRecord

    credential_factory()
    api_key, raw = api_key_factory()
    api_key.monthly_token_budget = 1000
    api_key.save()
    UsageRecord.objects.create(created_at=timezone.now(), api_key=api_key, endpoint="messages",
                               input_tokens=900, output_tokens=150)
    r = post(gateway, raw)
    assert r.status_code == 429 and "monthly budget" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) > 0


def test_refused_requests_leave_a_usage_record(gateway, api_key_factory):
    _, raw = api_key_factory(models=["claude-*"])
    assert post(gateway, raw, {**BODY, "model": "gpt-5.5"}).status_code == 403
    assert post(gateway, raw, {**BODY, "model": "nope"}).status_code == 404
    records = wait_for_usage(2)
    assert [(r.status_code, r.outcome, r.error_type, r.requested_model) for r in records] == [
        (403, "rejected", "model_not_allowed", "gpt-5.5"), (404, "rejected", "model_not_found", "nope")]
    assert all(r.api_key_id and r.user_id for r in records)
