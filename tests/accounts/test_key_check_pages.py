"""Key issuance shows the key once with copy buttons, filled-in configs and Check; the Check pages run
gateway.doctor against the live gateway (Django's test Client for the pages, real HTTP for /v1)."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey
from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(gateway: str, settings: Any, credential_factory: Any) -> str:
    """The gateway as the public URL, a Claude account and no ChatGPT one."""
    settings.PROXYHUB_PUBLIC_URL = gateway
    credential_factory("claude")
    return gateway


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_key_created_page_has_copy_buttons_configs_with_the_key_and_check(live: str, api_key_factory: Any) -> None:
    base, _ = api_key_factory("alice", models=["claude-sonnet-4-6", "gpt-5.5"])
    client = login(base.user)
    response = client.post(reverse("accounts:key_create"), {"name": "laptop", "based_on": base.pk,
                                                              "models": ["claude-sonnet-4-6", "gpt-5.5"]})
    assert response.status_code == 200
    html = response.content.decode()
    raw = re.search(r'<code id="raw-key">([^<]+)</code>', html).group(1)
    new = ApiKey.objects.get(user=base.user, name="laptop")
    assert 'data-copy="raw-key"' in html and "/static/accounts/copy.js" in html
    for fmt in ("factory", "claude-code", "codex"):
        text = re.search(rf'<pre id="config-text-{fmt}">(.*?)</pre>', html, re.S).group(1)
        assert raw in text and live in text, fmt
        assert f'data-copy="config-text-{fmt}"' in html
    check_url = reverse("doctor:mine", args=[new.pk])
    assert f'action="{check_url}"' in html and f'name="key" value="{raw}"' in html

    # What the Check button posts (copy.js asks for the fragment): one row per model.
    response = client.post(check_url, {"key": raw}, headers={"X-Requested-With": "fetch"})
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment
    assert re.search(r'class="check-ok" data-model="claude-sonnet-4-6"', fragment)
    assert re.search(r'class="check-fail" data-model="gpt-5.5"', fragment)
    assert "No ready account" in fragment and raw not in fragment
    records = wait_for_usage(2)
    assert {(r.requested_model, r.is_check, r.api_key_id) for r in records} == {
        ("claude-sonnet-4-6", True, new.pk), ("gpt-5.5", True, new.pk)}


def test_check_an_existing_key_by_pasting_it(live: str, api_key_factory: Any) -> None:
    api_key, raw = api_key_factory("alice", models=["claude-sonnet-4-6"])
    client = login(api_key.user)
    detail = client.get(reverse("accounts:key_detail", args=[api_key.pk])).content.decode()
    assert f'<code id="key-prefix">{api_key.prefix}</code>' in detail and 'data-copy="key-prefix"' in detail
    assert 'type="password" id="check-key" name="key"' in detail  # never the key itself
    listing = client.get(reverse("accounts:keys")).content.decode()
    assert f'data-copy="prefix-{api_key.pk}"' in listing and reverse("doctor:mine", args=[api_key.pk]) in listing

    url = reverse("doctor:mine", args=[api_key.pk])
    page = client.post(url, {"key": raw}).content.decode()  # no script: the whole page
    assert "<html" in page and 'class="check-ok" data-model="claude-sonnet-4-6"' in page
    assert live in page and raw not in page
    wrong = client.post(url, {"key": raw[:-2]}).content.decode()
    assert f"That is not the key {api_key.prefix}" in wrong and "check-ok" not in wrong
    assert len(wait_for_usage(1)) == 1  # the wrong key sent nothing


def test_another_users_key_is_a_404(live: str, api_key_factory: Any) -> None:
    theirs, raw = api_key_factory("bob")
    mine, _ = api_key_factory("alice")
    response = login(mine.user).post(reverse("doctor:mine", args=[theirs.pk]), {"key": raw})
    assert response.status_code == 404


def test_admin_issues_a_key_once_with_configs_and_checks_any_key(live: str, api_key_factory: Any,
                                                                   django_user_model: Any) -> None:
    staff = login(django_user_model.objects.create_superuser("root", "", "pw"))
    teammate = django_user_model.objects.create_user("carol")
    response = staff.post(reverse("admin:accounts_apikey_add"), {
        "user": teammate.pk, "name": "ci", "allowed_models": "claude-sonnet-4-6", "groups": "",
        "queue_wait_seconds": ""})
    assert response.status_code == 200, response.content[:2000]
    html = response.content.decode()
    raw = re.search(r'<code id="raw-key">([^<]+)</code>', html).group(1)
    api_key = ApiKey.objects.get(user=teammate)
    assert raw.startswith(api_key.prefix) and 'data-copy="raw-key"' in html
    assert all(f'data-copy="config-text-{fmt}"' in html for fmt in ("factory", "claude-code", "codex"))
    for fmt in ("factory", "claude-code", "codex"):
        assert raw in re.search(rf'<pre id="config-text-{fmt}">(.*?)</pre>', html, re.S).group(1), fmt
    check_url = reverse("doctor:admin", args=[api_key.pk])
    assert f'action="{check_url}"' in html
    # The raw key is not left in a session message for the next page.
    assert raw not in staff.get(reverse("admin:accounts_apikey_changelist")).content.decode()

    change = staff.get(reverse("admin:accounts_apikey_change", args=[api_key.pk])).content.decode()
    assert check_url in change
    result = staff.post(check_url, {"key": raw}).content.decode()
    assert 'class="check-ok" data-model="claude-sonnet-4-6"' in result
    # Teammates who are not staff do not get the admin's check.
    assert login(teammate).post(check_url, {"key": raw}).status_code == 302


def test_admin_key_list_has_a_prefix_copy_button(api_key_factory: Any, django_user_model: Any) -> None:
    api_key, _ = api_key_factory("alice")
    staff = login(django_user_model.objects.create_superuser("root", "", "pw"))
    html = staff.get(reverse("admin:accounts_apikey_changelist")).content.decode()
    assert f'<code id="prefix-{api_key.pk}">{api_key.prefix}</code>' in html
    assert f'data-copy="prefix-{api_key.pk}"' in html and "/static/accounts/copy.js" in html


def test_a_public_url_that_does_not_reach_proxyhub_is_diagnosed(live: str, settings: Any,
                                                                  api_key_factory: Any) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        settings.PROXYHUB_PUBLIC_URL = closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    api_key, raw = api_key_factory("alice", models=["claude-sonnet-4-6"])
    fragment = login(api_key.user).post(reverse("doctor:mine", args=[api_key.pk]), {"key": raw},
                                        headers={"X-Requested-With": "fetch"}).content.decode()
    assert 'class="check-fail" data-model="claude-sonnet-4-6"' in fragment
    assert f"The base URL {closed} does not reach ProxyHub" in fragment and "PROXYHUB_PUBLIC_URL" in fragment
