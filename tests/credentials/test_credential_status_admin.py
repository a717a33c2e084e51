"""The credentials page at a glance, and its refresh / test / enable actions."""
from __future__ import annotations

import time

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/credentials/credential/"


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "", "pw")
    client.force_login(user)
    return client


def act(admin_client, action, credential):
    return admin_client.post(CHANGELIST, {"action": action, "_selected_action": [credential.pk]}, follow=True)


def test_changelist_shows_state_expiry_windows_and_24h_usage_but_no_tokens(admin_client, credential_factory, api_key_factory):
    from gateway.usage.rows import UsageRow
    from gateway.usage.store import write_rows

    cooling = credential_factory(cooldown_until=timezone.now() + timezone.timedelta(minutes=10))
    cooling.windows = {"5h": {"utilization": 0.42, "reset": time.time() + 3600}, "7d": {"utilization": 0.9}}
    cooling.save()
    relogin = credential_factory(status="needs_relogin", status_reason="refresh failed: invalid_grant")
    key, _ = api_key_factory()
    # Through the gateway's write path: the page reads the hour rollups it maintains.
    write_rows([UsageRow(created_at=timezone.now(), api_key_id=key.pk, credential_id=cooling.pk,
                         endpoint="messages", input_tokens=100, output_tokens=20),
                UsageRow(created_at=timezone.now() - timezone.timedelta(days=2), credential_id=cooling.pk,
                         endpoint="messages", input_tokens=999)])
    page = admin_client.get(CHANGELIST).content.decode()
    assert "Cooling down until" in page and "Needs re-login: refresh failed: invalid_grant" in page
    # Windows as gauges with their percent (the weekly one has no reset time) instead of JSON.
    assert 'data-window="5h"' in page and ">42%<" in page and 'data-window="7d"' in page and ">90%<" in page
    assert "title=\"resets " in page and "utilization" not in page
    assert ">120<" in page  # tokens of the last 24 hours only
    for credential in (cooling, relogin):
        assert credential.access_token not in page and credential.refresh_token not in page


def test_refresh_now_action_rotates_tokens(admin_client, credential_factory, fake):
    fake.reset()
    credential = credential_factory()
    old = credential.refresh_token
    page = act(admin_client, "refresh_now", credential).content.decode()
    credential.refresh_from_db()
    assert "refreshed, expires" in page
    assert credential.refresh_token != old and credential.token_version == 1
    assert credential.access_token not in page


def test_refresh_now_also_learns_a_claude_accounts_missing_plan(admin_client, credential_factory, fake):
    fake.reset()
    credential = credential_factory(plan="")  # as imported from a file that names no plan
    act(admin_client, "refresh_now", credential)
    credential.refresh_from_db()
    assert credential.plan == "max" and credential.token_version == 1


def test_refresh_now_reports_a_dead_refresh_token(admin_client, credential_factory, fake):
    fake.reset()
    credential = credential_factory()
    fake.expire_refresh_token(credential.refresh_token)
    page = act(admin_client, "refresh_now", credential).content.decode()
    credential.refresh_from_db()
    assert "needs re-login" in page and credential.status == "needs_relogin"


def test_test_action_sends_a_tiny_real_request(admin_client, credential_factory, fake, catalog_seeded):
    good = credential_factory()
    page = act(admin_client, "test_request", good).content.decode()
    assert "200 answered" in page
    sent = fake.requests("claude")[-1].json
    assert sent["max_tokens"] == 1 and sent["model"] == "claude-haiku-4-5-20251001"
    codex = credential_factory("codex")
    assert "200 answered" in act(admin_client, "test_request", codex).content.decode()
    fake.expire_access_token(good.access_token)
    page = act(admin_client, "test_request", good).content.decode()
    assert "401" in page and "expired" in page


def test_disable_and_enable_actions(admin_client, credential_factory):
    credential = credential_factory()
    act(admin_client, "disable", credential)
    credential.refresh_from_db()
    assert credential.status == "disabled"
    act(admin_client, "enable", credential)
    credential.refresh_from_db()
    assert credential.status == "active"


def test_test_action_says_when_the_catalog_has_no_model_for_the_provider(admin_client, credential_factory):
    credential = credential_factory("codex")
    assert "no enabled codex model in the catalog" in act(admin_client, "test_request", credential).content.decode()
