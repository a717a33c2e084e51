"""Re-importing a token file ProxyHub has since refreshed must never put the older tokens back.

The bug: the old file's refresh token is spent, so after such an import the next
refresh failed (invalid_grant / refresh_token_reused) and the account needed a new
login, while the page said "updated". Both import paths (the admin upload and
``import_credentials``) go through credentials.connect.import_token_file.
"""
from __future__ import annotations

import io
import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from credentials.models import Credential
from credentials.refresh import refresh_now

pytestmark = pytest.mark.django_db

UPLOAD = reverse("admin:credentials_upload")


def claude_code_file(fake, email="cc@example.com", expires_in=3600) -> bytes:
    issued = fake.issue_claude_tokens(email=email, plan="max")
    return json.dumps({"claudeAiOauth": {
        "accessToken": issued["access_token"], "refreshToken": issued["refresh_token"],
        "expiresAt": int((time.time() + expires_in) * 1000), "subscriptionType": "max"}}).encode()


def codex_auth_file(fake, email="gpt@example.com") -> bytes:
    issued = fake.issue_codex_tokens(email=email, account_id="acct-7")
    return json.dumps({"OPENAI_API_KEY": None, "tokens": {
        "id_token": issued["id_token"], "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"], "account_id": "acct-7"}}).encode()


def upload_page(client, name: str, content: bytes) -> str:
    page = client.post(UPLOAD, {"files": [SimpleUploadedFile(name, content)], "label": ""}).content.decode()
    return page.split('id="upload-results"')[1].split("</ul>")[0]


def test_uploading_a_claude_file_again_after_a_refresh_keeps_the_newer_tokens(admin_client, fake):
    old_file = claude_code_file(fake)
    assert "imported cc@example.com" in upload_page(admin_client, ".credentials.json", old_file)
    refreshed = refresh_now(Credential.objects.get())  # the fake issues 8 h tokens; the file's expire in 1 h
    results = upload_page(admin_client, ".credentials.json", old_file)

    assert 'class="warning">.credentials.json: skipped' in results and "kept its tokens" in results
    assert "before the one ProxyHub holds" in results and "updated" not in results
    stored = Credential.objects.get()
    assert (stored.access_token, stored.refresh_token) == (refreshed.access_token, refreshed.refresh_token)
    assert stored.token_version == refreshed.token_version
    for secret in (refreshed.access_token, refreshed.refresh_token, json.loads(old_file)["claudeAiOauth"]["refreshToken"]):
        assert secret not in results
    # The stored refresh token is still the live one: the next refresh works.
    assert refresh_now(stored).status == Credential.Status.ACTIVE


def test_import_command_skips_an_older_codex_file_and_says_why(fake, tmp_path):
    path = tmp_path / "auth.json"
    path.write_bytes(codex_auth_file(fake))
    out = io.StringIO()
    call_command("import_credentials", str(path), stdout=out)
    assert "imported codex credential" in out.getvalue()
    time.sleep(1.1)  # JWT iat has one-second resolution
    refreshed = refresh_now(Credential.objects.get())

    out = io.StringIO()
    call_command("import_credentials", str(path), stdout=out)
    said = out.getvalue()
    assert f"{path}: skipped, codex credential #{refreshed.pk} kept its tokens" in said
    assert "issued" in said and "before the ones ProxyHub holds" in said and "updated" not in said
    assert Credential.objects.get().access_token == refreshed.access_token
    assert refreshed.refresh_token not in said and refreshed.access_token not in said
    assert refresh_now(Credential.objects.get()).status == Credential.Status.ACTIVE


def test_a_newer_file_still_replaces_the_stored_tokens(admin_client, fake):
    upload_page(admin_client, ".credentials.json", claude_code_file(fake, expires_in=3600))
    newer = claude_code_file(fake, expires_in=7200)  # e.g. after logging in again in Claude Code
    assert "updated cc@example.com" in upload_page(admin_client, ".credentials.json", newer)
    assert Credential.objects.get().access_token == json.loads(newer)["claudeAiOauth"]["accessToken"]


def test_the_same_file_twice_changes_nothing_and_says_so(fake, tmp_path):
    path = tmp_path / "claude.json"
    path.write_bytes(claude_code_file(fake))
    call_command("import_credentials", str(path), stdout=io.StringIO())
    version = Credential.objects.get().token_version
    out = io.StringIO()
    call_command("import_credentials", str(path), stdout=out)
    assert "skipped" in out.getvalue() and "already holds these exact tokens" in out.getvalue()
    assert Credential.objects.get().token_version == version
