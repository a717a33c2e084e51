"""The Codex config.toml names a model the key may use (it named gpt-5.5 for a claude-only key)."""
from __future__ import annotations

import html
import io
import tomllib

import pytest
from django.core.management import call_command

from credentials.models import Model

pytestmark = pytest.mark.django_db


def codex_model_of(text: str) -> str | None:
    return tomllib.loads(text).get("model")


def test_a_claude_only_key_gets_a_claude_model_on_me_and_in_the_admin(alice_client, staff_client, api_key_factory,
                                                                        catalog):
    api_key, _ = api_key_factory("alice", ["claude-*"])
    mine = alice_client.get(f"/me/keys/{api_key.pk}/config/codex/").content.decode()
    staff = staff_client.get(f"/admin/accounts/apikey/{api_key.pk}/config/codex/").content.decode()
    for text in (mine, staff):
        model = codex_model_of(text)
        assert model and model.startswith("claude-") and api_key.allows(model)
        assert Model.objects.get(name=model).enabled
        assert "gpt" not in text
    # The key page shows the same config inline.
    page = html.unescape(alice_client.get(f"/me/keys/{api_key.pk}/").content.decode())
    assert f'model = "{codex_model_of(mine)}"' in page


def test_the_client_config_command_follows_the_allowlist(api_key_factory, catalog):
    claude_only, _ = api_key_factory("alice", ["claude-sonnet-4-6"])
    gpt_too, _ = api_key_factory("bob", ["claude-*", "gpt-5.5"])
    out = io.StringIO()
    call_command("client_config", claude_only.prefix, "--format", "codex", stdout=out)
    assert codex_model_of(out.getvalue()) == "claude-sonnet-4-6"
    out = io.StringIO()
    call_command("client_config", gpt_too.prefix, "--format", "codex", stdout=out)
    assert codex_model_of(out.getvalue()) == "gpt-5.5"


def test_a_key_allowing_no_enabled_model_names_none(alice_client, api_key_factory, catalog):
    api_key, _ = api_key_factory("alice", ["no-such-model-*"])
    text = alice_client.get(f"/me/keys/{api_key.pk}/config/codex/").content.decode()
    assert codex_model_of(text) is None and "may use no enabled model" in text
    assert tomllib.loads(text)["model_providers"]["proxyhub"]["wire_api"] == "responses"
