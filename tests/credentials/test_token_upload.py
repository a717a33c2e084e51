"""Uploading token files in the admin: several at once, one result line each, contents never echoed."""
from __future__ import annotations

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from credentials.models import Credential

pytestmark = pytest.mark.django_db

UPLOAD = reverse("admin:credentials_upload")


def upload(client, *files, label=""):
    return client.post(UPLOAD, {"files": list(files), "label": label})


def json_file(name, data):
    return SimpleUploadedFile(name, json.dumps(data).encode(), content_type="application/json")


def test_upload_page_uses_the_admin_layout(admin_client):
    page = admin_client.get(UPLOAD).content.decode()
    assert 'enctype="multipart/form-data"' in page and "multiple" in page
    assert "/static/admin/css/base.css" in page  # admin/base_site.html, no CDN
    assert "https://" not in page.split("<body")[0].replace("https://docs.djangoproject.com", "")


def test_uploads_several_token_files_at_once(admin_client, fake):
    codex = fake.issue_codex_tokens(email="gpt@example.com", account_id="acct-9", plan="team")
    files = [
        json_file(".credentials.json", {"claudeAiOauth": {
            "accessToken": "sk-ant-oat01-AAA", "refreshToken": "sk-ant-ort01-BBB",
            "expiresAt": int((time.time() + 3600) * 1000), "subscriptionType": "max"}}),
        json_file("auth.json", {"OPENAI_API_KEY": None, "tokens": {
            "id_token": codex["id_token"], "access_token": codex["access_token"],
            "refresh_token": codex["refresh_token"], "account_id": "acct-9"}}),
        json_file("claude-me@example.com.json", {"type": "claude", "access_token": "sk-ant-oat01-CCC",
                                                 "refresh_token": "sk-ant-ort01-DDD", "email": "me@example.com"}),
        json_file("notes.json", {"secret": "sk-ant-oat01-ZZZ"}),
        SimpleUploadedFile("broken.json", b'{"access_token": "sk-ant-oat01-YYY"'),
    ]
    r = upload(admin_client, *files, label="")
    assert r.status_code == 200
    page = r.content.decode()
    lines = [line.strip() for line in page.split('id="upload-results"')[1].split("</ul>")[0].split("</li>")
             if "<li" in line]
    assert len(lines) == 5
    assert ".credentials.json: imported" in lines[0] and "plan max" in lines[0]
    assert "auth.json: imported gpt@example.com" in lines[1] and "plan team" in lines[1]
    assert "claude-me@example.com.json: imported me@example.com" in lines[2]
    assert 'class="error">notes.json: not imported: unrecognised' in lines[3]
    assert 'class="error">broken.json: not imported: not a JSON file' in lines[4]
    for secret in ("sk-ant", codex["access_token"], codex["refresh_token"], codex["id_token"]):
        assert secret not in page
    assert Credential.objects.count() == 3
    assert Credential.objects.get(provider="codex").account_id == "acct-9"


def test_uploading_a_known_account_again_updates_it(admin_client):
    data = {"type": "claude", "access_token": "sk-ant-oat01-1", "refresh_token": "sk-ant-ort01-1",
            "email": "me@example.com"}
    upload(admin_client, json_file("a.json", data), label="Shared Max")
    data["access_token"] = "sk-ant-oat01-2"
    page = upload(admin_client, json_file("a.json", data)).content.decode()
    assert "a.json: updated me@example.com" in page
    credential = Credential.objects.get()
    assert credential.access_token == "sk-ant-oat01-2" and credential.label == "Shared Max"


def test_upload_without_files_asks_for_them(admin_client):
    page = admin_client.post(UPLOAD, {"label": ""}).content.decode()
    assert "This field is required" in page
    assert not Credential.objects.exists()


def test_oversized_file_is_refused_unread(admin_client):
    big = SimpleUploadedFile("huge.json", b" " * (300 * 1024) + b"{}")
    page = upload(admin_client, big).content.decode()
    assert "huge.json: not imported: larger than 256 KiB" in page


def test_a_claude_code_file_is_identified_by_the_profile_and_updates_its_account_on_reimport(admin_client, fake):
    # Claude Code's .credentials.json names no account; the profile endpoint does.
    def claude_code_file(email):
        issued = fake.issue_claude_tokens(email=email, plan="pro")
        return json_file(".credentials.json", {"claudeAiOauth": {
            "accessToken": issued["access_token"], "refreshToken": issued["refresh_token"],
            "expiresAt": int((time.time() + 3600) * 1000), "scopes": ["user:inference", "user:profile"]}})

    page = upload(admin_client, claude_code_file("cc@example.com")).content.decode()
    assert ".credentials.json: imported cc@example.com" in page and "plan pro" in page
    credential = Credential.objects.get()
    assert credential.account_id and credential.email == "cc@example.com"
    # The same account's file again (after Claude Code refreshed it) updates, not duplicates.
    page = upload(admin_client, claude_code_file("cc@example.com")).content.decode()
    assert ".credentials.json: updated cc@example.com" in page
    assert Credential.objects.count() == 1
