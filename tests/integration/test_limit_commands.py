"""issue_key with limits and groups, set_limits (and --clear), set_credential_groups, pool_status groups;
and what they set is what the gateway enforces."""
from __future__ import annotations

import io
import json
from decimal import Decimal

import httpx
import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_issue_key_sets_every_limit_and_the_groups():
    from accounts.models import ApiKey

    output = run("issue_key", "carol", "--name", "agent", "--models", "claude-*", "--rpm", "20", "--concurrency", "2",
                 "--daily-tokens", "50000", "--monthly-tokens", "900000", "--monthly-cost", "12.5", "--share", "25",
                 "--expires-days", "30", "--groups", "core, contractors")
    raw = output.strip().splitlines()[-1]
    key = ApiKey.objects.get()
    assert key.prefix == raw[:len(key.prefix)] and key.name == "agent" and key.allowed_models == ["claude-*"]
    assert (key.requests_per_minute, key.concurrency_limit, key.daily_token_limit, key.monthly_token_budget) == (
        20, 2, 50000, 900000)
    assert key.monthly_cost_limit == Decimal("12.5") and key.pool_share_percent == Decimal("25")
    assert key.groups == ["contractors", "core"]
    assert 29 < (key.expires_at - key.created_at).total_seconds() / 86400 <= 30
    assert "rpm 20, concurrency 2" in output and "monthly cost $12.50" in output and "fair share 25%" in output


def test_issue_key_refuses_bad_flags_before_creating_anything():
    from accounts.models import ApiKey

    for flags in (["--share", "120"], ["--rpm", "-1"], ["--groups", "bad name!"], ["--expires-days", "0"]):
        with pytest.raises(CommandError):
            run("issue_key", "dave", *flags)
    assert not ApiKey.objects.exists()


def test_set_limits_changes_only_the_given_limits_and_clear_removes_them():
    from accounts.models import ApiKey

    raw = run("issue_key", "erin", "--rpm", "20", "--monthly-tokens", "1000").strip().splitlines()[-1]
    out = run("set_limits", raw[:12], "--concurrency", "1", "--queue-wait", "2.5", "--monthly-cost", "3")
    key = ApiKey.objects.get()
    assert (key.requests_per_minute, key.monthly_token_budget, key.concurrency_limit) == (20, 1000, 1)
    assert key.queue_wait_seconds == 2.5 and key.monthly_cost_limit == Decimal("3")
    assert "concurrency 1 (queue wait 2.5 s)" in out
    run("set_limits", raw[:12], "--rpm", "0", "--groups", "core")
    key.refresh_from_db()
    assert key.requests_per_minute is None and key.monthly_token_budget == 1000 and key.groups == ["core"]
    out = run("set_limits", raw[:12], "--clear", "--daily-tokens", "10")
    key.refresh_from_db()
    assert (key.requests_per_minute, key.concurrency_limit, key.monthly_token_budget, key.monthly_cost_limit,
            key.pool_share_percent, key.queue_wait_seconds, key.daily_token_limit) == (None, None, None, None, None, 0, 10)
    assert key.groups == ["core"]  # --clear is about limits; groups change with --groups
    assert "daily tokens 10" in out
    with pytest.raises(CommandError, match="no key"):
        run("set_limits", "sk-ph-nothere")
    with pytest.raises(CommandError, match="nothing to change"):
        run("set_limits", raw[:12])


def test_set_limits_takes_effect_in_the_gateway(gateway, credential_factory):
    credential_factory()
    raw = run("issue_key", "frank").strip().splitlines()[-1]
    send = lambda: httpx.post(gateway + "/v1/messages", json=BODY, headers={"x-api-key": raw}, timeout=30)  # noqa: E731
    assert [send().status_code for _ in range(2)] == [200, 200]
    run("set_limits", raw[:12], "--rpm", "1")
    assert send().status_code == 200  # requests before the limit was set are not counted against it
    r = send()
    assert r.status_code == 429 and "1 requests per minute" in r.json()["error"]["message"]
    run("set_limits", raw[:12], "--clear")
    assert send().status_code == 200


def test_set_credential_groups_by_id_or_label_and_pool_status_shows_them(credential_factory):
    from credentials.models import Credential

    first = credential_factory(email="one@example.com")
    second = credential_factory(email="two@example.com")
    assert "core" in run("set_credential_groups", str(first.pk), "core,contractors")
    run("set_credential_groups", "two@example.com", "contractors")
    assert Credential.objects.get(pk=first.pk).groups == ["contractors", "core"]
    assert Credential.objects.get(pk=second.pk).groups == ["contractors"]
    status = {e["id"]: e["groups"] for e in json.loads(run("pool_status", "--format", "json"))}
    assert status == {first.pk: ["contractors", "core"], second.pk: ["contractors"]}
    run("set_credential_groups", str(first.pk), "")
    assert Credential.objects.get(pk=first.pk).groups == []
    with pytest.raises(CommandError, match="no credential"):
        run("set_credential_groups", "nobody", "core")


def test_limit_changes_by_command_are_audited():
    from credentials.models import AuditEntry

    raw = run("issue_key", "gina").strip().splitlines()[-1]
    run("set_limits", raw[:12], "--daily-tokens", "500")
    entries = [e for e in AuditEntry.objects.order_by("id") if "daily_token_limit" in json.dumps(e.detail)]
    assert entries and entries[-1].actor.startswith("cli:")
    assert raw not in json.dumps([e.detail for e in AuditEntry.objects.all()])


def test_regrouping_a_credential_is_audited(credential_factory):
    from credentials.models import AuditEntry

    credential = credential_factory()
    run("set_credential_groups", str(credential.pk), "core")
    entries = [e for e in AuditEntry.objects.order_by("id") if "groups" in json.dumps(e.detail)]
    assert entries and entries[-1].actor.startswith("cli:") and "core" in json.dumps(entries[-1].detail)
