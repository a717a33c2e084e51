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


# --- issue 8: every limit through the shared store -------------------------------------------------

import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from decimal import Decimal  # noqa: E402


def eventually(check, timeout: float = 10.0):
    """The first truthy ``check()`` (polled), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.05)


def test_a_request_within_every_limit_is_never_refused(gateway, api_key_factory, credential_factory):
    credential_factory()
    api_key, raw = api_key_factory()
    api_key.requests_per_minute, api_key.concurrency_limit = 50, 3
    api_key.daily_token_limit, api_key.monthly_token_budget, api_key.monthly_cost_limit = 10**6, 10**7, Decimal("100")
    api_key.pool_share_percent = Decimal("50")
    api_key.save()
    assert [post(gateway, raw).status_code for _ in range(6)] == [200] * 6


def test_concurrency_refusal_is_immediate_and_names_the_limit(gateway, api_key_factory, credential_factory, fake):
    credential_factory()
    api_key, raw = api_key_factory()
    api_key.concurrency_limit = 1
    api_key.save()
    fake.add_fault("claude", "slow", delay=2.0)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, gateway, raw)
        eventually(lambda: fake.requests("claude"))  # the first one holds the slot upstream
        started = time.monotonic()
        r = post(gateway, raw, path="/v1/chat/completions",
                 body={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]})
        refused_in = time.monotonic() - started
        assert first.result().status_code == 200
    assert r.status_code == 429 and refused_in < 1.0
    assert "1 concurrent requests" in r.json()["error"]["message"] and r.headers["retry-after"] == "1"
    assert post(gateway, raw).status_code == 200  # the slot came back when the first request ended


def test_queue_wait_lets_a_request_wait_for_a_slot(gateway, api_key_factory, credential_factory, fake):
    credential_factory()
    api_key, raw = api_key_factory()
    api_key.concurrency_limit, api_key.queue_wait_seconds = 1, 5.0
    api_key.save()
    fake.add_fault("claude", "slow", delay=1.0)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, gateway, raw)
        eventually(lambda: fake.requests("claude"))
        started = time.monotonic()
        second = post(gateway, raw)
        waited = time.monotonic() - started
        assert first.result().status_code == 200
    assert second.status_code == 200 and 0.3 < waited < 5.0  # it waited for the slot, then was served


def test_daily_tokens_count_input_cache_write_and_output(gateway, api_key_factory, credential_factory):
    from gateway.models import UsageRecord

    credential_factory()
    api_key, raw = api_key_factory()
    # Earlier today: a million cache-read tokens (not counted) and 90 counted ones.
    UsageRecord.objects.create(created_at=timezone.now(), api_key=api_key, endpoint="messages", input_tokens=40,
                               cache_write_tokens=30, output_tokens=20, cache_read_tokens=10**6)
    api_key.daily_token_limit = 100
    api_key.save()
    assert post(gateway, raw).status_code == 200  # 90 < 100: cache reads are not counted
    r = eventually(lambda: (resp := post(gateway, raw)).status_code == 429 and resp)
    assert "100 tokens per day" in r.json()["error"]["message"]
    assert 0 < int(r.headers["retry-after"]) <= 86400


def test_monthly_tokens_count_what_the_requests_used(gateway, api_key_factory, credential_factory):
    credential_factory()
    api_key, raw = api_key_factory()
    api_key.monthly_token_budget = 1
    api_key.save()
    first = post(gateway, raw)
    assert first.status_code == 200 and first.json()["usage"]["output_tokens"] > 0
    r = eventually(lambda: (resp := post(gateway, raw, path="/v1/responses", body={
        "model": "claude-sonnet-4-6", "input": "hi"})).status_code == 429 and resp)
    assert r.json()["error"]["code"] == "rate_limit_exceeded" and "monthly budget of 1 tokens" in r.json()["error"]["message"]


def test_monthly_cost_is_priced_from_the_catalog(gateway, api_key_factory, credential_factory):
    from credentials.models import Model
    from gateway.models import UsageRecord

    Model.objects.filter(name="claude-sonnet-4-6").update(input_price=Decimal("3"), output_price=Decimal("15"))
    credential_factory()
    spent, raw_spent = api_key_factory()
    under, raw_under = api_key_factory("bob")
    for key in (spent, under):
        # 1000 input at $3/M + 700 output at $15/M = $0.0135
        UsageRecord.objects.create(created_at=timezone.now(), api_key=key, endpoint="messages",
                                   requested_model="claude-sonnet-4-6", upstream_model="claude-sonnet-4-6",
                                   input_tokens=1000, output_tokens=700)
    spent.monthly_cost_limit, under.monthly_cost_limit = Decimal("0.01"), Decimal("0.02")
    spent.save()
    under.save()
    r = post(gateway, raw_spent)
    assert r.status_code == 429 and "monthly cost limit of $0.01" in r.json()["error"]["message"]
    assert post(gateway, raw_under).status_code == 200


def test_limits_fail_open_when_the_database_cannot_answer(gateway, api_key_factory, credential_factory, monkeypatch):
    """The monthly budget used to answer 500 when the database was down; now the request passes (logged)."""
    from django.db import OperationalError

    from gateway import limits

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    credential_factory()
    api_key, raw = api_key_factory()
    api_key.monthly_token_budget = 10**6
    api_key.save()
    monkeypatch.setattr(limits, "used_since", down)
    assert post(gateway, raw).status_code == 200
    assert not [k for k in limits._seeded if k.startswith(f"tok:m:{api_key.pk}:")]  # tried again next time


def test_a_long_request_keeps_its_concurrency_slot_by_renewing_the_lease(gateway, api_key_factory,
                                                                         credential_factory, fake, monkeypatch):
    from gateway import limits

    monkeypatch.setattr(limits, "SLOT_TTL_SECONDS", 0.6)  # renewed every 0.2 s; it would lapse at 0.6 s
    credential_factory()
    api_key, raw = api_key_factory()
    api_key.concurrency_limit = 1
    api_key.save()
    fake.add_fault("claude", "slow", delay=2.5)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, gateway, raw)
        eventually(lambda: fake.requests("claude"))
        time.sleep(1.2)  # twice the lease: only renewals keep the slot
        second = post(gateway, raw)
        assert first.result().status_code == 200
    assert second.status_code == 429 and "concurrent" in second.json()["error"]["message"]


def test_reaching_a_limit_raises_the_budget_alert(gateway, api_key_factory, credential_factory):
    from credentials.models import AlertEvent

    credential_factory()
    api_key, raw = api_key_factory()
    api_key.daily_token_limit = 1
    api_key.save()
    assert post(gateway, raw).status_code == 200
    alert = eventually(lambda: AlertEvent.objects.filter(event="budget_100").first())
    assert alert.key_prefix == api_key.prefix and "daily_tokens" in (alert.detail + alert.text)


def test_counting_tokens_does_not_use_up_a_token_limit(gateway, api_key_factory, credential_factory):
    credential_factory()
    api_key, raw = api_key_factory()
    api_key.daily_token_limit = 1
    api_key.save()
    for _ in range(3):
        r = post(gateway, raw, path="/v1/messages/count_tokens",
                 body={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi " * 50}]})
        assert r.status_code == 200 and r.json()["input_tokens"] > 1
    time.sleep(0.5)
    assert post(gateway, raw).status_code == 200  # the counted prompts used nothing
