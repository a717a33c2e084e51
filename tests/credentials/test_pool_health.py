"""The admin index says, per provider, whether the pool can serve and what needs the admin."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from credentials.health import pool_health
from credentials.models import Credential

pytestmark = pytest.mark.django_db


def make(provider: str, label: str, **fields) -> Credential:
    return Credential.objects.create(provider=provider, label=label, access_token="t", refresh_token="r", **fields)


def row_text(html: str, provider: str) -> str:
    match = re.search(rf'<tr class="pool-{provider}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {provider}"
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split())


def test_the_admin_index_summarises_each_providers_pool(admin_client):
    now = timezone.now()
    make("claude", "ready")
    make("claude", "cooling", cooldown_until=now + timedelta(minutes=30))
    make("claude", "later", cooldown_until=now + timedelta(hours=2))
    make("claude", "old", status=Credential.Status.NEEDS_RELOGIN, status_reason="refresh failed: invalid_grant")
    make("claude", "spare", status=Credential.Status.DISABLED)

    html = admin_client.get("/admin/").content.decode()
    claude = row_text(html, "claude")
    soonest = (now + timedelta(minutes=30)).strftime("%H:%M")
    assert claude.startswith("Claude 1 ready, 2 cooling down (next back at " + soonest)
    assert "1 needs re-login, 1 disabled" in claude and "old: refresh failed: invalid_grant" in claude
    assert "Not serving" not in claude
    assert "?provider=claude&amp;status=needs_relogin" in html

    codex = row_text(html, "codex")
    assert codex.startswith("ChatGPT (Codex) No account connected") and "Connect one" in codex
    assert "/admin/credentials/credential/connect/codex/" in html


def test_a_pool_with_nothing_ready_says_it_is_not_serving():
    make("codex", "a", cooldown_until=timezone.now() + timedelta(minutes=5))
    make("codex", "b", status=Credential.Status.NEEDS_RELOGIN)
    codex = {row.provider: row for row in pool_health(timezone.now())}["codex"]
    assert (codex.ready, codex.cooling, codex.needs_relogin, codex.serving) == (0, 1, 1, False)


def test_users_without_credential_permission_see_no_pool(client, django_user_model):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    client.force_login(staff)
    assert 'id="pool-health"' not in client.get("/admin/").content.decode()
