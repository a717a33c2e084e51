"""Fair share under pool pressure and account groups, through HTTP against the fake upstreams."""
from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


def post(gateway, key, body=BODY, path="/v1/messages"):
    return httpx.post(gateway + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.05)


def tokens_in(key: str) -> int:
    """Trailing 5-hour tokens under ``key`` in the shared store."""
    from asgiref.sync import async_to_sync

    from gateway import limits, shared

    async def total() -> int:
        return await shared.backend().window_total(key, limits.FAIR_SHARE_WINDOW_SECONDS)

    return async_to_sync(total)()


def tokens_in_pool() -> int:
    from gateway import limits

    return tokens_in(limits.pool_key("claude"))


def test_fair_share_holds_back_only_the_key_past_its_share_while_the_pool_is_under_pressure(
        gateway, api_key_factory, credential_factory, fake):
    from credentials.models import Credential
    from gateway import pool

    credential = credential_factory()
    greedy, raw_greedy = api_key_factory("greedy")
    modest, raw_modest = api_key_factory("modest")
    _, raw_plain = api_key_factory("plain")  # no share: never held back by it
    greedy.pool_share_percent, modest.pool_share_percent = Decimal("25"), Decimal("60")
    greedy.save()
    modest.save()
    reset = int(time.time()) + 1800
    fake.set_account_utilization("claude", credential.account_id, 0.5, 0.1, five_hour_reset=reset)
    # Below the threshold nobody is held back, however much one key uses.
    assert [post(gateway, raw_greedy).status_code for _ in range(3)] == [200] * 3
    from gateway import limits

    eventually(lambda: tokens_in(limits.share_key(greedy.pk, "claude")) > 0)
    # The pool comes under pressure: the response headers say 90 % of the 5-hour window.
    fake.set_account_utilization("claude", credential.account_id, 0.9, 0.1, five_hour_reset=reset)
    assert post(gateway, raw_plain).status_code == 200
    eventually(lambda: Credential.objects.get(pk=credential.pk).windows.get("5h", {}).get("utilization", 0) >= 0.9)
    pool.invalidate()
    greedy_used = tokens_in(limits.share_key(greedy.pk, "claude"))
    assert greedy_used > 0
    eventually(lambda: tokens_in_pool() > greedy_used)  # the plain key's tokens are in the pool too
    r = post(gateway, raw_greedy)
    assert r.status_code == 429, r.text
    assert "fair share of 25%" in r.json()["error"]["message"]
    assert 1700 <= int(r.headers["retry-after"]) <= 1801  # until the 5-hour window resets
    assert post(gateway, raw_modest).status_code == 200  # within its share (it used nothing yet)
    assert post(gateway, raw_plain).status_code == 200
    # The pressure ends: the greedy key works again.
    fake.set_account_utilization("claude", credential.account_id, 0.5, 0.1, five_hour_reset=reset)
    assert post(gateway, raw_plain).status_code == 200
    eventually(lambda: Credential.objects.get(pk=credential.pk).windows.get("5h", {}).get("utilization", 1) < 0.8)
    pool.invalidate()
    assert post(gateway, raw_greedy).status_code == 200


def served_by(fake, provider: str = "claude") -> list[str]:
    return [r.headers["authorization"].split()[1] for r in fake.requests(provider) if r.status == 200]


def test_a_key_bound_to_groups_uses_only_their_accounts_and_fails_over_inside_them(
        gateway, api_key_factory, credential_factory, fake):
    core = credential_factory(groups=["core"])
    contractors = [credential_factory(groups=["contractors"]), credential_factory(groups=["contractors", "x"])]
    bound, raw_bound = api_key_factory("contractor")
    bound.groups = ["contractors"]
    bound.save()
    _, raw_free = api_key_factory("lead")
    assert [post(gateway, raw_bound).status_code for _ in range(4)] == [200] * 4
    assert set(served_by(fake)) == {c.access_token for c in contractors}
    # The first contractor account is rate-limited: the request fails over to the other one, never to core.
    fake.reset()
    fake.add_fault("claude", "rate_limited", token=contractors[0].access_token, times=5)
    assert [post(gateway, raw_bound).status_code for _ in range(3)] == [200] * 3
    assert set(served_by(fake)) == {contractors[1].access_token}
    # A key without groups uses every account, core included.
    fake.reset()
    for _ in range(3):
        assert post(gateway, raw_free).status_code == 200
    assert core.access_token in served_by(fake)


def test_a_key_whose_groups_have_no_ready_account_is_told_so(gateway, api_key_factory, credential_factory):
    credential_factory(groups=["core"])
    api_key, raw = api_key_factory()
    api_key.groups = ["contractors"]
    api_key.save()
    r = post(gateway, raw)
    assert r.status_code == 503
    assert "groups (contractors) have no ready Claude account" in r.json()["error"]["message"]


def test_models_list_only_what_the_keys_groups_can_serve(gateway, api_key_factory, credential_factory):
    credential_factory("claude", groups=["core"])
    credential_factory("codex", groups=["contractors"])
    contractor, raw_contractor = api_key_factory("contractor")
    contractor.groups = ["contractors"]
    contractor.save()
    _, raw_lead = api_key_factory("lead")

    def models(raw):
        r = httpx.get(gateway + "/v1/models", headers={"authorization": f"Bearer {raw}"}, timeout=10)
        assert r.status_code == 200
        return {m["id"] for m in r.json()["data"]}

    theirs, everything = models(raw_contractor), models(raw_lead)
    assert theirs and all(m.startswith("gpt") for m in theirs)
    assert any(m.startswith("claude") for m in everything) and theirs < everything
    assert post(gateway, raw_contractor, CHAT, "/v1/chat/completions").status_code == 200
