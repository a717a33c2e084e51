"""Bad input and faults get a clear error in the client's own format, never HTML or a 500."""
from __future__ import annotations

import httpx
import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db(transaction=True)

ANTHROPIC_BODY = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def key(api_key_factory):
    return api_key_factory(models=["claude-*"])[1]


def test_missing_and_invalid_keys_get_401_in_each_format(gateway):
    r = httpx.post(gateway + "/v1/messages", json=ANTHROPIC_BODY)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert "Missing API key" in r.json()["error"]["message"]
    r = httpx.post(gateway + "/v1/chat/completions", json={"model": "gpt-5.5", "messages": []},
                   headers={"authorization": "Bearer sk-ph-wrong"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "sk-ph-wrong" not in r.text


def test_revoked_key_is_refused_at_once(gateway, api_key_factory, credential_factory):
    from accounts.services import revoke_key

    credential_factory()
    api_key, raw = api_key_factory()
    assert httpx.post(gateway + "/v1/messages", json=ANTHROPIC_BODY, headers={"x-api-key": raw}).status_code == 200
    revoke_key(api_key.prefix)
    assert httpx.post(gateway + "/v1/messages", json=ANTHROPIC_BODY, headers={"x-api-key": raw}).status_code == 401


def test_malformed_json_is_400(gateway, key):
    r = httpx.post(gateway + "/v1/messages", content=b"{nope", headers={"x-api-key": key})
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    r = httpx.post(gateway + "/v1/responses", content=b"[1]", headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 400 and "error" in r.json()


def test_model_rules_unknown_404_forbidden_403_missing_400(gateway, key):
    h = {"x-api-key": key}
    r = httpx.post(gateway + "/v1/messages", json={**ANTHROPIC_BODY, "model": "claude-9"}, headers=h)
    assert r.status_code == 404 and "claude-sonnet-4-6" in r.json()["error"]["message"]
    r = httpx.post(gateway + "/v1/messages", json={**ANTHROPIC_BODY, "model": "gpt-5.5"}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = httpx.post(gateway + "/v1/messages", json={"messages": []}, headers=h)
    assert r.status_code == 400


def test_model_aliases_resolve_to_the_catalog_entry(gateway, key, credential_factory, fake):
    credential_factory()
    r = httpx.post(gateway + "/v1/messages", json={**ANTHROPIC_BODY, "model": "sonnet"}, headers={"x-api-key": key})
    assert r.status_code == 200
    assert fake.requests("claude")[-1].json["model"] == "claude-sonnet-4-6"


def test_body_too_large_is_413(gateway, key):
    with override_settings(PROXYHUB_MAX_BODY_BYTES=1000):
        r = httpx.post(gateway + "/v1/messages", content=b"x" * 5000, headers={"x-api-key": key})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"


def test_paths_without_v1_say_to_add_it(gateway):
    for path in ("/messages", "/chat/completions", "/responses"):
        r = httpx.post(gateway + path, json={})
        assert r.status_code == 404
        assert "/v1" in r.text and r.headers["content-type"].startswith("application/json")
    r = httpx.get(gateway + "/v1/nothing")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")


def test_claude_codes_connection_probe_is_answered(gateway):
    # Claude Code sends HEAD <ANTHROPIC_BASE_URL>/api/hello before its first request.
    assert httpx.head(gateway + "/api/hello").status_code == 200
    assert httpx.get(gateway + "/api/hello").json() == {"status": "ok"}


def test_models_lists_allowed_models_with_an_active_credential(gateway, key, credential_factory):
    r = httpx.get(gateway + "/v1/models", headers={"authorization": f"Bearer {key}"})
    assert r.json() == {"object": "list", "data": []}
    credential_factory("claude")
    credential_factory("codex")
    r = httpx.get(gateway + "/v1/models", headers={"authorization": f"Bearer {key}"})
    ids = [m["id"] for m in r.json()["data"]]
    assert "claude-sonnet-4-6" in ids and not any(i.startswith("gpt") for i in ids)
    assert all(m["object"] == "model" for m in r.json()["data"])
    r = httpx.get(gateway + "/v1/models", headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    body = r.json()
    assert body["has_more"] is False and body["data"][0]["type"] == "model"
    assert body["first_id"] == body["data"][0]["id"]
    r = httpx.get(gateway + "/v1/models/claude-opus-4-7", headers={"x-api-key": key})
    assert r.json()["id"] == "claude-opus-4-7"


def test_count_tokens_is_forwarded_to_claude(gateway, key, credential_factory, fake):
    credential_factory()
    body = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "count me"}]}
    for path in ("/v1/messages/count_tokens", "/v1/v1/messages/count_tokens"):
        r = httpx.post(gateway + path, json=body, headers={"x-api-key": key})
        assert r.status_code == 200, r.text
        assert r.json()["input_tokens"] > 0
    assert fake.requests("claude")[-1].path == "/v1/messages/count_tokens"


def test_websocket_upgrade_on_a_path_without_websocket_is_refused_at_once(gateway, key):
    import socket
    from urllib.parse import urlsplit

    r = httpx.get(gateway + "/v1/responses", headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 426  # a GET without the upgrade (the WebSocket mode: tests/integration/test_websocket.py)
    url = urlsplit(gateway)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert sock.recv(4096).split(b"\r\n", 1)[0].startswith(b"HTTP/1.1 426")


def test_thinking_level_in_the_model_name_reaches_the_upstream(gateway, api_key_factory, credential_factory, fake):
    credential_factory("claude")
    credential_factory("codex")
    _, key = api_key_factory(models=["claude-*", "gpt-*"])
    h = {"authorization": f"Bearer {key}"}
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(gateway + "/v1/chat/completions", json={**chat, "model": "claude-sonnet-4-5-20250929(high)"}, headers=h)
    assert r.status_code == 200, r.text
    sent = fake.requests("claude")[-1].json
    assert sent["model"] == "claude-sonnet-4-5-20250929"
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 24576} and sent["max_tokens"] > 24576
    r = httpx.post(gateway + "/v1/messages", json={**ANTHROPIC_BODY, "model": "gpt-5.5(low)"}, headers=h)
    assert r.status_code == 200, r.text
    assert fake.requests("codex")[-1].json["reasoning"]["effort"] == "low"
    r = httpx.post(gateway + "/v1/messages", json={**ANTHROPIC_BODY, "model": "gpt-5.5(turbo)"}, headers=h)
    assert r.status_code == 400 and "thinking level" in r.json()["error"]["message"]


def test_a_model_added_to_the_catalog_is_served_without_a_restart(gateway, key, credential_factory, fake):
    from credentials.models import Model

    credential_factory()
    body = {**ANTHROPIC_BODY, "model": "claude-sonnet-5"}
    assert httpx.post(gateway + "/v1/messages", json=body, headers={"x-api-key": key}).status_code == 404
    Model.objects.create(name="claude-sonnet-5", provider="claude", upstream_id="claude-sonnet-5-20261101")
    r = httpx.post(gateway + "/v1/messages", json=body, headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    assert fake.requests("claude")[-1].json["model"] == "claude-sonnet-5-20261101"
    Model.objects.filter(name="claude-sonnet-5").update(enabled=False)
    from gateway import catalog

    catalog.invalidate()  # update() sends no signal; another process would see it within the cache TTL
    assert httpx.post(gateway + "/v1/messages", json=body, headers={"x-api-key": key}).status_code == 404
