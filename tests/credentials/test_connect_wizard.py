"""The admin's "Connect Claude / ChatGPT account" wizard, against the fake token endpoints."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from credentials import connect
from credentials.models import Credential, PendingLogin
from tests.credentials.conftest import approve, authorize_params, shown_authorize_url, start_url
from tests.fakes.tokens import stable_uuid

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/credentials/credential/"


def open_wizard(client: Client, provider: str) -> tuple[str, str]:
    """Start a login; returns (the wizard page's path, the authorize URL it shows)."""
    r = client.get(start_url(provider), follow=True)
    assert r.status_code == 200
    return r.redirect_chain[-1][0], shown_authorize_url(r.content.decode())


def paste(client: Client, page: str, pasted: str, label: str = ""):
    return client.post(page, {"pasted": pasted, "label": label}, follow=True)


def stored_columns() -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token, id_token FROM credentials_credential")
        return cursor.fetchall()


def test_changelist_offers_both_connect_buttons_and_upload(admin_client):
    page = admin_client.get(CHANGELIST).content.decode()
    assert "Connect Claude account" in page and start_url("claude") in page
    assert "Connect ChatGPT account" in page and start_url("codex") in page
    assert reverse("admin:credentials_upload") in page


def test_connects_a_claude_account(admin_client, oauth):
    page, url = open_wizard(admin_client, "claude")
    q = authorize_params(url)
    assert url.startswith("https://claude.ai/oauth/authorize?")
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43 and len(q["state"]) >= 32
    assert q["redirect_uri"] == "https://platform.claude.com/oauth/code/callback"

    r = paste(admin_client, page, approve(oauth, "claude", url, email="max@example.com", plan="pro"), label="Team Max")
    html = r.content.decode()
    assert r.redirect_chain[-1][0] == CHANGELIST
    assert "Connected max@example.com" in html and "plan pro" in html

    credential = Credential.objects.get()
    assert credential.provider == "claude" and credential.label == "Team Max"
    assert credential.email == "max@example.com" and credential.plan == "pro"  # from the profile endpoint
    assert credential.account_id == stable_uuid("claude-account", "max@example.com")
    assert credential.status == Credential.Status.ACTIVE
    assert timedelta(hours=7) < credential.expires_at - timezone.now() <= timedelta(hours=8)
    assert credential.access_token.startswith("sk-ant-oat01-") and credential.refresh_token.startswith("sk-ant-ort01-")
    # The exchange sent the verifier matching the shown challenge (the fake checks it) as JSON.
    exchange = oauth.token_requests("claude")[-1].json
    assert exchange["grant_type"] == "authorization_code" and exchange["state"] == authorize_params(url)["state"]
    assert not PendingLogin.objects.exists()

    assert_tokens_hidden(admin_client, credential, html)


def test_connects_a_chatgpt_account(admin_client, oauth):
    page, url = open_wizard(admin_client, "codex")
    q = authorize_params(url)
    assert url.startswith("https://auth.openai.com/oauth/authorize?")
    assert q["code_challenge_method"] == "S256" and q["state"]
    assert q["redirect_uri"] == "http://localhost:1455/auth/callback"
    assert "http://localhost:1455/auth/callback?" in admin_client.get(page).content.decode()  # the instructions

    pasted = approve(oauth, "codex", url, email="gpt@example.com", account_id="acct-team", plan="pro")
    r = paste(admin_client, page, pasted)
    html = r.content.decode()
    assert "Connected gpt@example.com" in html and "plan pro" in html

    credential = Credential.objects.get()
    assert (credential.provider, credential.email, credential.account_id, credential.plan) == (
        "codex", "gpt@example.com", "acct-team", "pro")
    assert credential.label == "gpt@example.com"
    assert credential.expires_at > timezone.now() + timedelta(days=9)
    assert credential.id_token and credential.refresh_token.startswith("rt_")
    assert oauth.token_requests("codex")[-1].form["grant_type"] == "authorization_code"

    assert_tokens_hidden(admin_client, credential, html)


def assert_tokens_hidden(client: Client, credential: Credential, *pages: str) -> None:
    secrets = [t for t in (credential.access_token, credential.refresh_token, credential.id_token) if t]
    shown = list(pages) + [
        client.get(CHANGELIST).content.decode(),
        client.get(reverse("admin:credentials_credential_change", args=[credential.pk])).content.decode(),
    ]
    for page in shown:
        for secret in secrets:
            assert secret not in page
    for row in stored_columns():  # encrypted at rest
        for column in row:
            for secret in secrets:
                assert secret not in column


def test_reconnecting_a_known_account_updates_it(admin_client, oauth):
    page, url = open_wizard(admin_client, "claude")
    paste(admin_client, page, approve(oauth, "claude", url, email="same@example.com"), label="Original")
    first = Credential.objects.get()
    Credential.objects.filter(pk=first.pk).update(status=Credential.Status.NEEDS_RELOGIN, priority=5)

    page, url = open_wizard(admin_client, "claude")
    r = paste(admin_client, page, approve(oauth, "claude", url, email="same@example.com"))
    assert "Updated same@example.com" in r.content.decode()

    again = Credential.objects.get()
    assert again.pk == first.pk and again.label == "Original" and again.priority == 5
    assert again.status == Credential.Status.ACTIVE
    assert again.access_token != first.access_token and again.token_version == first.token_version + 1


def test_wrong_state_is_refused_and_the_login_stays_open(admin_client, oauth):
    page, url = open_wizard(admin_client, "claude")
    pasted = approve(oauth, "claude", url)
    code = pasted.split("#")[0]

    r = paste(admin_client, page, f"{code}#not-this-login")
    html = r.content.decode()
    assert r.status_code == 200 and "state does not match" in html
    assert code not in html  # the pasted code is not echoed back
    assert r.wsgi_request.sensitive_post_parameters == ("pasted",)  # nor put in error reports
    assert not Credential.objects.exists() and oauth.token_requests("claude") == []

    # The same login can still be completed with the right paste.
    assert "Connected a@example.com" in paste(admin_client, page, pasted).content.decode()


def test_wrong_state_in_a_chatgpt_callback_is_refused(admin_client, oauth):
    page, url = open_wizard(admin_client, "codex")
    pasted = approve(oauth, "codex", url).replace("state=", "state=x")
    assert "state does not match" in paste(admin_client, page, pasted).content.decode()
    assert not Credential.objects.exists() and oauth.token_requests("codex") == []


def test_an_expired_login_must_be_started_again(admin_client, oauth, monkeypatch):
    page, url = open_wizard(admin_client, "claude")
    pasted = approve(oauth, "claude", url)
    later = timezone.now() + timedelta(minutes=15, seconds=1)
    monkeypatch.setattr(connect, "_now", lambda: later)

    r = paste(admin_client, page, pasted)
    html = r.content.decode()
    assert "expired" in html and "15 minutes" in html and 'id="restart"' in html
    assert not Credential.objects.exists() and oauth.token_requests("claude") == []
    assert "expired" in admin_client.get(page).content.decode()

    # Starting again purges the stale login and works.
    page, url = open_wizard(admin_client, "claude")
    assert PendingLogin.objects.count() == 1
    monkeypatch.undo()
    assert "Connected" in paste(admin_client, page, approve(oauth, "claude", url)).content.decode()


def test_invalid_grant_is_shown_and_nothing_is_saved(admin_client, oauth):
    page, url = open_wizard(admin_client, "claude")
    pasted = approve(oauth, "claude", url)
    oauth.add_fault("claude_token", "token_error", status=400,
                    body={"error": "invalid_grant", "error_description": "Invalid authorization code"})

    html = paste(admin_client, page, pasted).content.decode()
    assert "invalid_grant" in html and "refused the code" in html
    assert not Credential.objects.exists()
    assert PendingLogin.objects.count() == 1  # the admin may approve again from the same link

    page, url = open_wizard(admin_client, "claude")
    assert "Connected" in paste(admin_client, page, approve(oauth, "claude", url)).content.decode()


def test_invalid_grant_from_openai_is_shown(admin_client, oauth):
    page, url = open_wizard(admin_client, "codex")
    pasted = approve(oauth, "codex", url)
    oauth.add_fault("codex_token", "token_error", status=400,
                    body={"error": "invalid_grant", "error_description": "Invalid or expired authorization code"})
    html = paste(admin_client, page, pasted).content.decode()
    assert "ChatGPT refused the code" in html and "invalid_grant" in html
    assert not Credential.objects.exists()


def test_unreachable_token_endpoint_is_shown_and_nothing_is_saved(admin_client, oauth, settings):
    page, url = open_wizard(admin_client, "claude")
    pasted = approve(oauth, "claude", url)
    settings.PROXYHUB_CLAUDE_TOKEN_URL = f"http://127.0.0.1:{closed_port()}/v1/oauth/token"

    html = paste(admin_client, page, pasted).content.decode()
    assert "Could not complete the login" in html and "unreachable" in html and "Nothing was saved" in html
    assert not Credential.objects.exists()

    # Once the network is back, the same paste goes through (the code was never used).
    settings.PROXYHUB_CLAUDE_TOKEN_URL = oauth.claude_token_url
    assert "Connected" in paste(admin_client, page, pasted).content.decode()


def test_an_unreachable_profile_endpoint_still_connects_the_account_without_a_plan(admin_client, oauth, settings):
    page, url = open_wizard(admin_client, "claude")
    settings.PROXYHUB_CLAUDE_BASE_URL = f"http://127.0.0.1:{closed_port()}"
    html = paste(admin_client, page, approve(oauth, "claude", url, email="np@example.com")).content.decode()
    assert "Connected np@example.com" in html and "plan unknown" in html
    credential = Credential.objects.get()
    assert credential.email == "np@example.com" and credential.plan == ""


def test_a_token_endpoint_error_page_is_a_plain_failure(admin_client, oauth):
    page, url = open_wizard(admin_client, "codex")
    oauth.add_fault("codex_token", "token_error", status=503, body={"error": "temporarily_unavailable"})
    html = paste(admin_client, page, approve(oauth, "codex", url)).content.decode()
    assert "Could not complete the login with ChatGPT" in html and "503" in html
    assert not Credential.objects.exists()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_pasting_nothing_useful_is_explained(admin_client, oauth):
    page, _ = open_wizard(admin_client, "codex")
    html = paste(admin_client, page, "http://localhost:1455/auth/callback").content.decode()
    assert "No code found" in html
    html = paste(admin_client, page, "").content.decode()
    assert "This field is required" in html


def test_non_staff_users_are_refused(client, oauth):
    user = get_user_model().objects.create_user("mallory", password="pw")
    client.force_login(user)
    for url in (start_url("claude"), reverse("admin:credentials_upload")):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/admin/login/")
    assert not PendingLogin.objects.exists()


def test_staff_without_the_add_permission_are_refused(client, oauth):
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(start_url("claude")).status_code == 403
    assert client.get(reverse("admin:credentials_upload")).status_code == 403
    assert "Connect Claude account" not in client.get(CHANGELIST).content.decode()


def test_another_admins_login_cannot_be_finished(admin_client, oauth):
    page, url = open_wizard(admin_client, "claude")
    other = Client()
    other.force_login(get_user_model().objects.create_superuser("other", password="pw"))
    html = paste(other, page, approve(oauth, "claude", url)).content.decode()
    assert "no longer exists" in html
    assert not Credential.objects.exists()



def test_an_overlong_paste_is_refused_without_echoing_it(admin_client, oauth):
    page, _ = open_wizard(admin_client, "claude")
    pasted = "x" * 5000 + "#state"
    html = paste(admin_client, page, pasted, label="kept").content.decode()
    assert "at most 4096 characters" in html and "x" * 100 not in html
    assert 'value="kept"' in html


@pytest.mark.parametrize("profile, plan", [
    ({"account": {"has_claude_max": True, "has_claude_pro": True}}, "max"),
    ({"account": {"has_claude_pro": True}, "organization": {"organization_type": "claude_team"}}, "pro"),
    ({"account": {}, "organization": {"organization_type": "claude_enterprise"}}, "enterprise"),
    ({"account": "junk", "organization": None}, ""),
    ({}, ""),
])
def test_the_plan_is_read_from_the_profile(profile, plan):
    from credentials.oauth.claude import plan_from_profile

    assert plan_from_profile(profile) == plan
