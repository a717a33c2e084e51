"""Client configs for one key: Factory settings.json, Claude Code env, Codex config.toml."""
from __future__ import annotations

import html
import json
import re
import tomllib
from urllib.parse import unquote

import pytest
from django.utils import timezone

from accounts.client_configs import factory_model_ids
from accounts.models import ApiKey

pytestmark = pytest.mark.django_db

ALLOWED = ["claude-sonnet-4-6", "gpt-5.5"]


@pytest.fixture
def key(api_key_factory, catalog):
    api_key, _ = api_key_factory("alice", ALLOWED)
    return api_key


def download(client, api_key, fmt):
    response = client.get(f"/me/keys/{api_key.pk}/config/{fmt}/")
    assert response.status_code == 200
    return response


def test_factory_settings_download_has_only_allowed_models_with_the_right_base_urls(alice_client, key):
    response = download(alice_client, key, "factory")
    assert response["Content-Disposition"] == 'attachment; filename="settings.json"'
    assert response["Content-Type"].startswith("application/json")
    entries = {e["model"]: e for e in json.loads(response.content)["customModels"]}
    assert sorted(entries) == ALLOWED
    assert entries["claude-sonnet-4-6"]["provider"] == "anthropic"
    assert entries["claude-sonnet-4-6"]["baseUrl"] == "http://testserver"  # Factory adds /v1/messages itself
    assert entries["gpt-5.5"]["provider"] == "openai"
    assert entries["gpt-5.5"]["baseUrl"] == "http://testserver/v1"
    assert {e["apiKey"] for e in entries.values()} == {"${PROXYHUB_API_KEY}"}
    # The id Droid derives for each entry (what `droid exec -m` takes), and the entry's place in the list.
    assert [(e["id"], e["index"]) for e in json.loads(response.content)["customModels"]] == [
        ("custom:Claude-Sonnet-4.6-[ProxyHub]-0", 0), ("custom:GPT-5.5-[ProxyHub]-0", 1)]


def test_factory_ids_collapse_whitespace_and_number_entries_sharing_a_name():
    # Droid 0.225: custom:<display name, whitespace runs made "-">-<earlier entries with that name>.
    assert factory_model_ids(["GPT-5.5 [ProxyHub]", " Claude  Opus\t4 [ProxyHub] ", "GPT-5.5  [ProxyHub]"]) == [
        "custom:GPT-5.5-[ProxyHub]-0", "custom:Claude-Opus-4-[ProxyHub]-0", "custom:GPT-5.5-[ProxyHub]-1"]


def test_codex_config_uses_v1_and_the_responses_wire_api(alice_client, key):
    response = download(alice_client, key, "codex")
    assert response["Content-Disposition"] == 'attachment; filename="config.toml"'
    config = tomllib.loads(response.content.decode())
    provider = config["model_providers"]["proxyhub"]
    assert provider["base_url"] == "http://testserver/v1"
    assert provider["wire_api"] == "responses"
    assert provider["env_key"] == "PROXYHUB_API_KEY"
    assert config["model"] == "gpt-5.5"


def test_claude_code_env_points_at_the_server_root(alice_client, key):
    text = download(alice_client, key, "claude-code").content.decode()
    assert "export ANTHROPIC_BASE_URL=http://testserver\n" in text
    assert "export ANTHROPIC_AUTH_TOKEN=$PROXYHUB_API_KEY" in text
    assert "ANTHROPIC_MODEL=claude-sonnet-4-6" in text
    # Every tier Claude Code can switch to (--model sonnet / opus / haiku) names a model the key may use:
    # this key has no opus or haiku, so those tiers fall back to its sonnet.
    for tier in ("SONNET", "OPUS", "HAIKU"):
        assert f"ANTHROPIC_DEFAULT_{tier}_MODEL=claude-sonnet-4-6\n" in text


def test_claude_code_env_names_the_newest_model_of_each_tier(alice_client, api_key_factory, catalog):
    api_key, _ = api_key_factory("alice", ["claude-*"])
    text = download(alice_client, api_key, "claude-code").content.decode()
    assert "ANTHROPIC_DEFAULT_SONNET_MODEL=claude-sonnet-4-6\n" in text
    assert "ANTHROPIC_DEFAULT_OPUS_MODEL=claude-opus-4-7\n" in text
    assert "ANTHROPIC_DEFAULT_HAIKU_MODEL=claude-haiku-4-5" in text


def test_configs_use_the_public_url_when_one_is_set(alice_client, key, settings):
    settings.PROXYHUB_PUBLIC_URL = "https://proxy.example.com/"
    entries = json.loads(download(alice_client, key, "factory").content)["customModels"]
    assert {e["baseUrl"] for e in entries} == {"https://proxy.example.com", "https://proxy.example.com/v1"}


def test_key_page_shows_every_config_with_the_placeholder(alice_client, key):
    page = alice_client.get(f"/me/keys/{key.pk}/").content.decode()
    for fmt in ("factory", "claude-code", "codex"):
        assert f'id="config-{fmt}"' in page and f"/me/keys/{key.pk}/config/{fmt}/" in page
    assert "${PROXYHUB_API_KEY}" in page and "sk-ph-" not in page.replace(key.prefix, "")


def test_configs_on_the_creation_page_carry_the_new_raw_key(alice_client, key):
    page = alice_client.post("/me/keys/new/", {"name": "fresh", "based_on": key.pk}).content.decode()
    raw = re.search(r'<code id="raw-key">([^<]+)</code>', page).group(1)
    factory = re.search(r'<section class="config" id="config-factory">.*?<pre[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert {e["apiKey"] for e in json.loads(html.unescape(factory))["customModels"]} == {raw}
    assert f"ANTHROPIC_AUTH_TOKEN={raw}" in page
    # The download is a data: URL, so the raw key is never fetched from the server again.
    data_url = re.search(r'href="(data:application/json[^"]+)"', page).group(1)
    assert raw in unquote(html.unescape(data_url))


def test_unknown_format_and_revoked_key_have_no_config(alice_client, key):
    assert alice_client.get(f"/me/keys/{key.pk}/config/nope/").status_code == 404
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert alice_client.get(f"/me/keys/{key.pk}/config/factory/").status_code == 404
    assert 'id="config-factory"' not in alice_client.get(f"/me/keys/{key.pk}/").content.decode()


def test_the_admin_change_page_links_to_the_keys_configs_and_usage(staff_client, key):
    page = staff_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    for fmt in ("factory", "claude-code", "codex"):
        assert f"/admin/accounts/apikey/{key.pk}/config/{fmt}/" in page
    assert f"/admin/usage/?key={key.pk}" in page
    response = staff_client.get(f"/admin/accounts/apikey/{key.pk}/config/factory/")
    assert response.status_code == 200
    assert sorted(e["model"] for e in json.loads(response.content)["customModels"]) == ALLOWED


def test_admin_config_downloads_are_for_staff_only(alice_client, key):
    response = alice_client.get(f"/admin/accounts/apikey/{key.pk}/config/factory/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
