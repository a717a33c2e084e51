"""Bodies that break their format's promises never get a 500 or an HTML page.

Most get a 400 in the client's own format; a few items the translators can
skip safely (an unknown tool entry, a part without content) are dropped, and
the request is served.
"""
from __future__ import annotations

import copy
import json
import random

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


# -- mutated requests: a fuzz run with a fixed seed ------------------------------------------------

VALID = {
    "/v1/messages": {"model": "claude-sonnet-4-6", "max_tokens": 64, "tools": [
        {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Use the tool for Paris"}]}]},
    "/v1/chat/completions": {"model": "gpt-5.5", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
                  {"type": "custom", "custom": {"name": "apply_patch"}}]},
    "/v1/responses": {"model": "claude-sonnet-4-6", "reasoning": {"effort": "high"}, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]},
    "/v1/responses/compact": {"model": "gpt-5.5", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]},
}
JUNK = [None, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, True, "claude-sonnet-4-6", [{"type": "zzz"}],
        [{"role": "user"}], [{"type": "text"}], {"type": "enabled", "budget_tokens": "x"}, "gpt-5.5(ultra)"]


def _paths(obj, prefix=()):
    if prefix:
        yield prefix
    children = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in children:
        yield from _paths(value, prefix + (key,))


def _mutated(rng, body):
    body = copy.deepcopy(body)
    for _ in range(rng.randint(1, 3)):
        places = list(_paths(body))
        if not places:
            break
        *parents, last = rng.choice(places)
        node = body
        for key in parents:
            node = node[key]
        if isinstance(node, dict) and rng.random() < 0.2:
            del node[last]
        else:
            node[last] = copy.deepcopy(rng.choice(JUNK))
    body["stream"] = rng.random() < 0.3
    return body


def test_mutated_requests_get_an_answer_or_an_error_in_the_clients_format(gateway, api_key_factory, credential_factory,
                                                                        fake):
    credential_factory("claude")
    credential_factory("codex")
    _, key = api_key_factory()
    rng = random.Random(20261125)
    with httpx.Client(timeout=30) as client:
        for _ in range(150):
            path = rng.choice(list(VALID))
            body = _mutated(rng, VALID[path])
            r = client.post(gateway + path, json=body, headers={"authorization": f"Bearer {key}"})
            case = f"{path} {json.dumps(body)[:200]} -> {r.status_code} {r.text[:200]}"
            assert r.status_code < 500 or r.status_code == 501, case
            if r.status_code >= 400:
                payload = r.json()
                assert (payload["type"] == "error" if path == "/v1/messages" else "error" in payload), case
    # Whatever reached the upstreams was refused as bad input at worst, never crashed them.
    sent = fake.requests("claude") + fake.requests("codex")
    assert sent and all((r.status or 200) < 500 for r in sent)
