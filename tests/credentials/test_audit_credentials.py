"""Audit entries of the connect wizard and of a refresh by hand that fails (tokens never recorded)."""
from __future__ import annotations

import json

import pytest

from credentials.models import AuditEntry, Credential
from tests.credentials.conftest import approve, shown_authorize_url, start_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_connecting_an_account_in_the_wizard_is_recorded(admin_client, admin_user, oauth):
    r = admin_client.get(start_url("codex"), follow=True)
    page, url = r.redirect_chain[-1][0], shown_authorize_url(r.content.decode())
    admin_client.post(page, {"pasted": approve(oauth, "codex", url, email="gpt@example.com"), "label": "Team GPT"})

    credential = Credential.objects.get()
    entry = AuditEntry.objects.get(action="credential.connected")
    assert (entry.actor, entry.user_id, entry.target_id) == (admin_user.username, admin_user.pk, str(credential.pk))
    assert entry.detail["changes"]["label"] == "Team GPT" and entry.detail["changes"]["provider"] == "codex"
    assert {entry.detail["changes"][f] for f in ("access_token", "refresh_token", "id_token")} == {"(set)"}
    dump = json.dumps([e.detail for e in AuditEntry.objects.all()])
    for token in (credential.access_token, credential.refresh_token, credential.id_token):
        assert token not in dump


def test_a_failed_refresh_by_hand_is_recorded_with_its_reason(admin_client, credential_factory, oauth):
    credential = credential_factory("claude")
    Credential.objects.filter(pk=credential.pk).update(refresh_token="sk-ant-ort01-not-issued-by-the-fake")
    admin_client.post("/admin/credentials/credential/", {"action": "refresh_now",
                                                         "_selected_action": [credential.pk]})
    entry = AuditEntry.objects.get(action="credential.refresh_failed")
    assert entry.target_id == str(credential.pk) and entry.detail["outcome"] == "needs re-login"
    assert "sk-ant" not in json.dumps(entry.detail)
    assert not AuditEntry.objects.filter(action="credential.refreshed").exists()
