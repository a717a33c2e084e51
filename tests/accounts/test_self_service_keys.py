"""/me/: a teammate's own keys, creating one (shown once) and revoking one."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import authenticate_api_key, digest

pytestmark = pytest.mark.django_db

RAW_KEY = re.compile(r'<code id="raw-key">(sk-ph-[^<]+)</code>')


@pytest.mark.parametrize("url", ["/me/", "/me/keys/1/", "/me/keys/1/config/factory/", "/me/usage/", "/me/usage/csv/"])
def test_pages_redirect_anonymous_visitors_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/me/login/?next={url}"


def test_a_teammate_who_is_not_staff_logs_in_on_the_plain_login_page(client, alice):
    page = client.get("/me/login/")
    assert page.status_code == 200 and b'id="login-form"' in page.content
    response = client.post("/me/login/", {"username": "alice", "password": "alice-pw"})
    assert response.status_code == 302 and response["Location"] == "/me/"
    assert client.get("/me/").status_code == 200


def test_lists_own_keys_only(alice_client, api_key_factory):
    mine, _ = api_key_factory("alice", ["claude-*"], name="laptop")
    theirs, _ = api_key_factory("bob", name="bobs-key")
    page = alice_client.get("/me/").content.decode()
    assert mine.prefix in page and "laptop" in page and "claude-*" in page
    assert theirs.prefix not in page and "bobs-key" not in page


def test_creating_shows_the_raw_key_once_and_stores_only_its_digest(alice_client, api_key_factory, catalog):
    base, _ = api_key_factory("alice")
    response = alice_client.post("/me/keys/new/", {"name": "ci", "based_on": base.pk})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = RAW_KEY.search(response.content.decode()).group(1)
    created = ApiKey.objects.get(name="ci")
    assert created.user.username == "alice" and created.pk != base.pk
    assert created.digest == digest(raw) and raw not in (created.prefix, created.digest)
    assert not ApiKey.objects.filter(digest=raw).exists()
    assert authenticate_api_key(raw) == created
    # Never again: not on the list, not on the key's page.
    assert raw not in alice_client.get("/me/").content.decode()
    assert raw not in alice_client.get(f"/me/keys/{created.pk}/").content.decode()


def test_a_new_key_takes_a_subset_of_the_base_keys_models(alice_client, api_key_factory, catalog):
    base, _ = api_key_factory("alice", ["claude-*"])
    refused = alice_client.post("/me/keys/new/", {"name": "x", "based_on": base.pk, "models": ["gpt-5.5"]})
    assert refused.status_code == 400 and not ApiKey.objects.filter(name="x").exists()
    alice_client.post("/me/keys/new/", {"name": "one", "based_on": base.pk, "models": ["claude-sonnet-4-6"]})
    assert ApiKey.objects.get(name="one").allowed_models == ["claude-sonnet-4-6"]


def test_a_new_key_without_a_choice_copies_the_base_keys_models_expiry_and_limits(alice_client, api_key_factory,
                                                                                   catalog):
    expires = timezone.now() + timezone.timedelta(days=3)
    base, _ = api_key_factory("alice", ["claude-*", "gpt-5.5"], expires_at=expires)
    ApiKey.objects.filter(pk=base.pk).update(requests_per_minute=5, monthly_token_budget=1000)
    alice_client.post("/me/keys/new/", {"name": "copy", "based_on": base.pk})
    copy = ApiKey.objects.get(name="copy")
    assert copy.allowed_models == ["claude-*", "gpt-5.5"]  # never [] ("all") from a restricted base
    assert copy.expires_at == expires
    assert (copy.requests_per_minute, copy.monthly_token_budget) == (5, 1000)


def test_the_form_offers_only_models_an_active_key_allows(alice_client, api_key_factory, catalog):
    api_key_factory("alice", ["gpt-*"])
    page = alice_client.get("/me/").content.decode()
    assert 'value="gpt-5.5"' in page and 'value="claude-sonnet-4-6"' not in page


@pytest.mark.parametrize("state", ["revoked", "expired", "someone else's"])
def test_cannot_base_a_key_on_an_inactive_or_foreign_key(alice_client, api_key_factory, catalog, state):
    owner = "bob" if state == "someone else's" else "alice"
    base, _ = api_key_factory(owner)
    if state == "revoked":
        ApiKey.objects.filter(pk=base.pk).update(revoked_at=timezone.now())
    if state == "expired":
        ApiKey.objects.filter(pk=base.pk).update(expires_at=timezone.now() - timezone.timedelta(minutes=1))
    response = alice_client.post("/me/keys/new/", {"name": "sneaky", "based_on": base.pk})
    assert response.status_code == 400 and not ApiKey.objects.filter(name="sneaky").exists()


def test_a_teammate_without_an_active_key_is_told_to_ask_an_admin(alice_client):
    page = alice_client.get("/me/").content.decode()
    assert "Ask your admin" in page and 'id="create-key"' not in page


def test_revoking_an_own_key_takes_effect(alice_client, api_key_factory):
    api_key, raw = api_key_factory("alice")
    response = alice_client.post(f"/me/keys/{api_key.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/me/"
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert authenticate_api_key(raw) is None
    page = alice_client.get("/me/").content.decode()
    assert "revoked" in page and f"/me/keys/{api_key.pk}/revoke/" not in page


def test_revoking_needs_a_post_with_a_csrf_token(alice, api_key_factory):
    api_key, _ = api_key_factory("alice")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(f"/me/keys/{api_key.pk}/revoke/").status_code == 405
    assert client.post(f"/me/keys/{api_key.pk}/revoke/").status_code == 403
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


@pytest.mark.parametrize("method, path", [
    ("get", "/me/keys/{id}/"),
    ("get", "/me/keys/{id}/config/factory/"),
    ("get", "/me/keys/{id}/config/codex/"),
    ("post", "/me/keys/{id}/revoke/"),
    ("get", "/me/usage/?key={id}"),
    ("get", "/me/usage/csv/?key={id}"),
])
def test_another_teammates_key_is_a_404(alice_client, api_key_factory, method, path):
    theirs, _ = api_key_factory("bob")
    response = getattr(alice_client, method)(path.format(id=theirs.pk))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
