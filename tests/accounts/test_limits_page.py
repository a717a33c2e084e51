"""/me/ shows a teammate their own keys' limits and how much of each is used (from the shared store)."""
from __future__ import annotations

import re
import time
from decimal import Decimal

import httpx
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def row(html: str, name: str) -> list[str]:
    """The cells of the limits row called ``name``."""
    match = re.search(rf"<tr><td>{re.escape(name)}</td>(.*?)</tr>", html, re.S)
    assert match, f"no row {name!r}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", match.group(1), re.S)]


def test_me_shows_limits_and_their_usage_and_nobody_elses(gateway, api_key_factory, credential_factory,
                                                          django_user_model):
    credential_factory()
    mine, raw = api_key_factory("alice")
    mine.requests_per_minute, mine.daily_token_limit, mine.monthly_cost_limit = 30, 100000, Decimal("5")
    mine.concurrency_limit, mine.pool_share_percent, mine.groups = 2, Decimal("25"), []
    mine.save()
    theirs, _ = api_key_factory("bob")
    theirs.daily_token_limit = 777777
    theirs.save()
    r = httpx.post(gateway + "/v1/messages", json=BODY, headers={"x-api-key": raw}, timeout=30)
    assert r.status_code == 200
    usage = r.json()["usage"]
    counted = usage["input_tokens"] + usage.get("cache_creation_input_tokens", 0) + usage["output_tokens"]
    # (cache reads, when the fake reports some, are not counted: test_key_limits checks the rule)
    client = Client()
    client.force_login(django_user_model.objects.get(username="alice"))
    deadline = time.monotonic() + 10
    while True:  # the tokens are counted just after the answer
        html = client.get("/me/").content.decode()
        if row(html, "Tokens today (UTC)")[1] != "0" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert row(html, "Tokens today (UTC)") == ["100,000", f"{counted:,}", f"{counted * 100 // 100000}%"]
    assert row(html, "Requests per minute")[:2] == ["30", "1"]
    assert row(html, "Concurrent requests")[:2] == ["2", "0"]
    assert row(html, "Estimated cost this month")[0] == "$5.00"
    assert row(html, "Fair share of the pool (last 5 h)")[0] == "25%"
    assert "input + cache write + output" in html
    assert "777,777" not in html and "777777" not in html  # bob's limits are not on alice's page
    detail = client.get(f"/me/keys/{mine.pk}/").content.decode()
    assert row(detail, "Tokens today (UTC)")[1] == f"{counted:,}"
    assert client.get(f"/me/keys/{theirs.pk}/").status_code == 404


def test_admin_sets_a_keys_limits_and_groups_and_a_credentials_groups(staff_client, alice, catalog):
    from accounts.models import ApiKey
    from credentials.models import Credential

    page = staff_client.post("/admin/accounts/apikey/add/", {
        "user": alice.pk, "name": "agent", "allowed_models": "", "expires_at_0": "", "expires_at_1": "",
        "requests_per_minute": "20", "concurrency_limit": "2", "queue_wait_seconds": "1.5",
        "daily_token_limit": "5000", "monthly_token_budget": "", "monthly_cost_limit": "7.25",
        "pool_share_percent": "25", "groups": "core, contractors"}, follow=True)
    assert page.status_code == 200
    key = ApiKey.objects.get(name="agent")
    assert (key.requests_per_minute, key.concurrency_limit, key.queue_wait_seconds, key.daily_token_limit) == (
        20, 2, 1.5, 5000)
    assert key.monthly_token_budget is None and key.monthly_cost_limit == Decimal("7.25")
    assert key.pool_share_percent == Decimal("25") and key.groups == ["contractors", "core"]
    bad = staff_client.post(f"/admin/accounts/apikey/{key.pk}/change/", {
        "user": alice.pk, "name": "agent", "allowed_models": "", "expires_at_0": "", "expires_at_1": "",
        "groups": "no spaces allowed"})
    assert bad.status_code == 200 and b"invalid group name" in bad.content

    credential = Credential.objects.create(provider="claude", label="main", access_token="t", refresh_token="r")
    form = staff_client.get(f"/admin/credentials/credential/{credential.pk}/change/")
    assert form.status_code == 200 and b'name="groups"' in form.content
    data = {"provider": "claude", "label": "main", "status": "active", "priority": "0", "groups": "core",
            "status_reason": "", "cooldown_reason": "", "proxy_url": "", "cooldown_until_0": "", "cooldown_until_1": ""}
    done = staff_client.post(f"/admin/credentials/credential/{credential.pk}/change/", data)
    assert done.status_code == 302, done.content.decode()[:2000]
    credential.refresh_from_db()
    assert credential.groups == ["core"] and credential.access_token == "t"  # tokens untouched by the form
