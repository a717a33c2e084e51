"""Every change from the admin, the teammate pages or a command leaves an audit entry, and no secret.

Driven end to end: sign-ins through the real login forms (Django test Client),
changes through the admin's forms and actions, /me/ pages, and management commands.
"""
from __future__ import annotations

import getpass
import io
import json
import re
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey
from credentials.models import AuditEntry, Credential, Model

pytestmark = pytest.mark.django_db

RAW_KEY = re.compile(r"sk-ph-[A-Za-z0-9_-]{30,}")


def entries(action: str | None = None) -> list[AuditEntry]:
    query = AuditEntry.objects.order_by("id")
    return list(query.filter(action=action) if action else query)


def the_entry(action: str, actor: str | None = None) -> AuditEntry:
    found = [e for e in entries(action) if actor is None or e.actor == actor]
    assert len(found) == 1, [(e.action, e.target) for e in entries()]
    return found[0]


def assert_no_secret_in_any_entry(*secrets: str) -> None:
    dump = json.dumps([[e.actor, e.action, e.target, e.detail] for e in entries()])
    for secret in secrets:
        assert secret and secret not in dump, "a secret reached the audit trail"
    for api_key in ApiKey.objects.all():
        assert api_key.digest not in dump
    assert not RAW_KEY.search(dump)


@pytest.fixture
def lead(django_user_model):
    return django_user_model.objects.create_superuser("lead", "", "lead-pw-1234")


@pytest.fixture
def lead_client(lead) -> Client:
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": "lead", "password": "lead-pw-1234",
                                                          "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    return client


def test_sign_ins_and_failed_sign_ins_are_recorded_without_the_password(lead, alice):
    client = Client()
    client.post("/admin/login/", {"username": "lead", "password": "wrong-guess-987"})
    client.post("/me/login/", {"username": "alice", "password": "alice-pw"})

    failed = the_entry("signin_failed")
    assert (failed.actor, failed.target, failed.address) == ("anonymous", "lead", "127.0.0.1")
    assert failed.detail["path"] == "/admin/login/"
    signin = the_entry("signin")
    assert (signin.actor, signin.user_id, signin.target, signin.address) == ("alice", alice.pk, "alice", "127.0.0.1")
    assert signin.detail["path"] == "/me/login/"
    assert_no_secret_in_any_entry("wrong-guess-987", "alice-pw")


def test_admin_key_issue_allowlist_change_and_revoke_are_recorded(lead_client, lead, alice, catalog):
    page = lead_client.post("/admin/accounts/apikey/add/", {
        "user": alice.pk, "name": "ci", "allowed_models": "claude-*", "expires_at_0": "", "expires_at_1": "",
        "requests_per_minute": "", "monthly_token_budget": ""}, follow=True).content.decode()
    raw = RAW_KEY.search(page).group(0)  # shown once on the page, never in the trail
    api_key = ApiKey.objects.get(name="ci")
    issued = the_entry("key.issued")
    assert (issued.actor, issued.user_id, issued.address) == ("lead", lead.pk, "127.0.0.1")
    assert issued.target == f"{api_key.prefix}… (ci) of alice" and issued.target_id == str(api_key.pk)
    assert issued.detail["changes"]["allowed_models"] == ["claude-*"]
    assert "digest" not in issued.detail["changes"]

    lead_client.post(f"/admin/accounts/apikey/{api_key.pk}/change/", {
        "user": alice.pk, "name": "ci", "allowed_models": "claude-*, gpt-5.5", "expires_at_0": "",
        "expires_at_1": "", "requests_per_minute": "60", "monthly_token_budget": ""})
    changed = the_entry("key.changed")
    assert changed.detail["changes"] == {"allowed_models": [["claude-*"], ["claude-*", "gpt-5.5"]],
                                         "requests_per_minute": [None, 60]}

    lead_client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    revoked = the_entry("key.revoked")
    assert revoked.actor == "lead" and revoked.detail["changes"]["revoked_at"][0] is None
    assert_no_secret_in_any_entry(raw, "lead-pw-1234")


def test_admin_catalog_edit_and_credential_actions_are_recorded(lead_client, fake, catalog):
    model = Model.objects.get(name="claude-sonnet-4-6")
    lead_client.post("/admin/credentials/model/", {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": model.pk, "form-0-enabled": "",
        "_save": "Save"})
    edited = the_entry("model.changed")
    assert edited.target == "claude-sonnet-4-6" and edited.detail["changes"] == {"enabled": [True, False]}

    issued = fake.issue_claude_tokens(email="max@example.com")
    upload = {"files": [SimpleUploadedFile("claude.json", json.dumps({
        "type": "claude", "access_token": issued["access_token"], "refresh_token": issued["refresh_token"],
        "email": "max@example.com", "expired": (timezone.now() + timedelta(hours=1)).isoformat()}).encode())],
        "label": "Shared Max"}
    lead_client.post("/admin/credentials/credential/upload/", upload)
    credential = Credential.objects.get()
    imported = the_entry("credential.imported")
    assert imported.actor == "lead" and imported.target_id == str(credential.pk)
    assert imported.detail["changes"]["label"] == "Shared Max"
    assert imported.detail["changes"]["access_token"] == "(set)"

    changelist = "/admin/credentials/credential/"
    lead_client.post(changelist, {"action": "refresh_now", "_selected_action": [credential.pk]})
    refreshed = the_entry("credential.refreshed")
    assert refreshed.detail["changes"]["refresh_token"] == "(changed)" and "expires_at" in refreshed.detail["changes"]
    fresh = Credential.objects.get()
    fresh_tokens = [fresh.access_token, fresh.refresh_token]
    assert fresh_tokens[1] != issued["refresh_token"]
    lead_client.post(changelist, {"action": "disable", "_selected_action": [credential.pk]})
    assert the_entry("credential.disabled").detail["changes"]["status"] == ["active", "disabled"]
    lead_client.post(changelist, {"action": "delete_selected", "_selected_action": [credential.pk], "post": "yes"})
    assert the_entry("credential.deleted").target_id == str(credential.pk)

    assert_no_secret_in_any_entry(issued["access_token"], issued["refresh_token"], *fresh_tokens)


def test_admin_user_creation_and_deactivation_are_recorded(lead_client):
    lead_client.post("/admin/auth/user/add/", {"username": "newbie", "password1": "Newbie-pw-5678",
                                               "password2": "Newbie-pw-5678", "usable_password": "true"})
    created = the_entry("user.created", actor="lead")
    assert created.target == "newbie" and created.address == "127.0.0.1"
    newbie = created.target_id
    now = timezone.now()
    lead_client.post(f"/admin/auth/user/{newbie}/change/", {
        "username": "newbie", "first_name": "", "last_name": "", "email": "", "is_active": "",
        "date_joined_0": now.strftime("%Y-%m-%d"), "date_joined_1": now.strftime("%H:%M:%S"),
        "initial-date_joined_0": now.strftime("%Y-%m-%d"), "initial-date_joined_1": now.strftime("%H:%M:%S")})
    deactivated = the_entry("user.deactivated")
    assert deactivated.detail["changes"]["is_active"] == [True, False]
    assert_no_secret_in_any_entry("Newbie-pw-5678")
    dump = json.dumps([e.detail for e in entries()])
    assert "md5$" not in dump and "pbkdf2" not in dump  # no password hash either


def test_teammate_pages_record_key_creation_and_revocation(alice_client, alice, api_key_factory, catalog):
    base, _ = api_key_factory("alice", ["claude-*"])
    AuditEntry.objects.all().delete()
    page = alice_client.post("/me/keys/new/", {"name": "laptop", "based_on": base.pk}).content.decode()
    raw = RAW_KEY.search(page).group(0)
    issued = the_entry("key.issued")
    assert (issued.actor, issued.user_id, issued.address) == ("alice", alice.pk, "127.0.0.1")
    laptop = ApiKey.objects.get(name="laptop")
    alice_client.post(f"/me/keys/{laptop.pk}/revoke/")
    revoked = the_entry("key.revoked")
    assert revoked.actor == "alice" and revoked.target_id == str(laptop.pk)
    assert_no_secret_in_any_entry(raw, "alice-pw")


def test_commands_record_as_cli_and_audit_log_prints_them(tmp_path, fake, catalog):
    out = io.StringIO()
    call_command("issue_key", "carol", "--models", "claude-*", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    prefix = ApiKey.objects.get().prefix
    call_command("revoke_key", prefix, stdout=io.StringIO())
    issued = fake.issue_codex_tokens(email="gpt@example.com", account_id="acct-3")
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"tokens": {"id_token": issued["id_token"], "access_token": issued["access_token"],
                                           "refresh_token": issued["refresh_token"], "account_id": "acct-3"}}))
    call_command("import_credentials", str(path), stdout=io.StringIO())
    call_command("import_credentials", str(path), stdout=io.StringIO())  # the same file: skipped

    cli = f"cli:{getpass.getuser()}"
    actions = [(e.actor, e.action) for e in entries()]
    for action in ("user.created", "key.issued", "key.revoked", "credential.imported", "credential.import_skipped"):
        assert (cli, action) in actions

    out = io.StringIO()
    call_command("audit_log", "--format", "json", stdout=out)
    listed = json.loads(out.getvalue())
    assert [e["action"] for e in listed] == [e.action for e in entries()]  # oldest first
    assert {"at", "actor", "action", "target", "detail"} <= set(listed[0])
    skipped = next(e for e in listed if e["action"] == "credential.import_skipped")
    assert "already holds these exact tokens" in skipped["detail"]["reason"]

    table = io.StringIO()
    call_command("audit_log", stdout=table)
    lines = table.getvalue().splitlines()
    assert len(lines) == len(listed) and all(cli in line for line in lines)
    assert any("key.revoked" in line and prefix in line for line in lines)

    later = (timezone.now() + timedelta(seconds=1)).isoformat()
    out = io.StringIO()
    call_command("audit_log", "--since", later, "--format", "json", stdout=out)
    assert json.loads(out.getvalue()) == []
    assert_no_secret_in_any_entry(raw, issued["access_token"], issued["refresh_token"], issued["id_token"])


def test_a_background_token_refresh_is_not_an_admins_change(credential_factory, fake):
    from credentials.refresh import refresh_now

    credential = credential_factory("claude")
    before = AuditEntry.objects.count()
    time.sleep(0.01)
    refresh_now(credential)  # no operation, no actor: what the gateway's background refresh does
    assert AuditEntry.objects.count() == before


def test_the_admin_shows_the_trail_read_only_with_filters(lead_client):
    Client().post("/me/login/", {"username": "x", "password": "y"})  # leaves a signin_failed entry
    page = lead_client.get("/admin/credentials/auditentry/").content.decode()
    assert "signin_failed" in page and 'id="changelist-filter"' in page
    assert lead_client.get("/admin/credentials/auditentry/?action=signin").status_code == 200
    assert lead_client.get("/admin/credentials/auditentry/add/").status_code == 403
    entry = entries()[0]
    assert lead_client.post(f"/admin/credentials/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_actor_and_address_reach_the_entry(catalog, api_key_factory):
    """The middleware's async path (daphne and uvicorn serve the pages through ASGI)."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    from django.db import connections

    try:
        base, _ = await sync_to_async(api_key_factory)("dana", ["claude-*"])
        user = base.user
        user.set_password("dana-pw-1357")
        await user.asave()
        client = AsyncClient()
        assert (await client.post("/me/login/", {"username": "dana", "password": "dana-pw-1357"})).status_code == 302
        response = await client.post("/me/keys/new/", {"name": "tablet", "based_on": base.pk})
        assert response.status_code == 200
        issued = await AuditEntry.objects.filter(action="key.issued", actor="dana").aget()
        assert issued.address == "127.0.0.1" and issued.user_id == user.pk
        assert "(tablet) of dana" in issued.target
    finally:
        # The views ran in asgiref's thread: close its connection there, or Postgres cannot drop the test database.
        await sync_to_async(connections.close_all)()


def test_many_to_many_changes_are_recorded_generically(alice):
    """Group membership of a user here; the same code records credential groups when they arrive."""
    from django.contrib.auth.models import Group

    from credentials import audit

    ops = Group.objects.create(name="ops")
    with audit.acting_as(audit.Actor("lead", None, "192.0.2.1")):
        alice.groups.add(ops)
        alice.groups.remove(ops)
    added, removed = entries("user.changed")[-2:]
    assert added.detail["changes"] == {"groups": {"added": ["ops"]}} and added.address == "192.0.2.1"
    assert removed.detail["changes"] == {"groups": {"removed": ["ops"]}} and removed.actor == "lead"
