"""Bodies that break their format's promises never get a 500 or an HTML page.

Most get a 400 in the client's own format; a few items the translators can
skip safely (an unknown tool entry, a part without content) are dropped, and
the request is served.
"""
from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)

REJECTED = [
    ("/v1/chat/completions", {"model": "claude-sonnet-4-6", "messages": "hello"}),
    ("/v1/chat/completions", {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": 5}]}),
    ("/v1/chat/completions", {"model": "gpt-5.5", "messages": [{"content": "no role"}]}),
    ("/v1/responses", {"model": "claude-sonnet-4-6", "input": 42}),
    ("/v1/messages", {"model": "gpt-5.5", "max_tokens": 5, "messages": {"role": "user"}}),
]
TOLERATED = [
    ("/v1/chat/completions", {"model": "gpt-5.5", "messages": [{"role": "user", "content": "x"}], "tools": [5]}),
    ("/v1/responses", {"model": "claude-sonnet-4-6", "input": [{"type": "function_call"}]}),
    ("/v1/responses", {"model": "gpt-5.5", "input": [7]}),
    ("/v1/messages", {"model": "gpt-5.5", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]}),
    ("/v1/messages", {"model": "gpt-5.5", "max_tokens": 5, "system": 12, "messages": [{"role": "user", "content": "x"}]}),
]
CASES = [(p, b, True) for p, b in REJECTED] + [(p, b, False) for p, b in TOLERATED]


@pytest.mark.parametrize("path, body, rejected", CASES,
                         ids=[f"{p.split('/')[-1]}-{i}" for i, (p, _, _) in enumerate(CASES)])
def test_malformed_bodies_never_get_a_500(gateway, api_key_factory, credential_factory, path, body, rejected):
    credential_factory("claude")
    credential_factory("codex")
    _, key = api_key_factory()
    r = httpx.post(gateway + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code < 500 and r.headers["content-type"].startswith("application/json"), r.text
    assert (400 <= r.status_code < 500) == rejected, r.text
    payload = r.json()
    if not rejected:
        return
    if path == "/v1/messages":
        assert payload["type"] == "error" and payload["error"]["message"]
    else:
        assert payload["error"]["message"]


def test_a_bug_answers_500_in_the_clients_format_without_details(gateway, api_key_factory, monkeypatch, caplog):
    from gateway import app

    async def broken(*args, **kwargs):
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr(app, "_serve_generation", broken)
    _, key = api_key_factory()
    r = httpx.post(gateway + "/v1/messages", json={"model": "claude-sonnet-4-6"}, headers={"x-api-key": key})
    assert r.status_code == 500
    assert r.json()["type"] == "error" and "server log" in r.json()["error"]["message"]
    assert "secret-internal-detail" not in r.text
