"""An upstream prepares a request once; each credential it is tried on only adds its own part (upstream/base.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.upstream.claude import Claude
from gateway.upstream.codex import Codex
from gateway.upstream.registry import UPSTREAMS


@dataclass
class Account:
    pk: int
    account_id: str
    access_token: str


ONE, TWO = Account(1, "acct-1", "token-1"), Account(2, "acct-2", "token-2")
MESSAGES = {"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}


def prepare(upstream: Claude | Codex, body: dict, **kwargs: object):
    options = {"endpoint": "messages", "client_headers": {}, "thinking": "", "adaptive": False,
               "session_seed": "phk_seed", **kwargs}
    return upstream.prepare(body, **options)  # type: ignore[arg-type]


def test_claude_names_each_account_in_the_user_id_of_the_same_prepared_body():
    prepared = prepare(Claude(), MESSAGES)
    one, two = Claude().call(ONE, prepared), Claude().call(TWO, prepared)
    user_ids = [json.loads(json.loads(c.body)["metadata"]["user_id"]) for c in (one, two)]
    assert [u["account_uuid"] for u in user_ids] == ["acct-1", "acct-2"]
    assert json.loads(one.body)["system"] == json.loads(two.body)["system"]  # the rest is shared
    assert (one.headers["authorization"], two.headers["authorization"]) == ("Bearer token-1", "Bearer token-2")
    assert list(one.headers)[0] == "authorization" and one.stream


def test_claude_keeps_a_user_id_the_client_sent_and_serialises_the_body_once():
    body = {**MESSAGES, "metadata": {"user_id": "client-chosen"}}
    prepared = prepare(Claude(), body)
    assert prepared.data and Claude().call(ONE, prepared).body is Claude().call(TWO, prepared).body
    assert json.loads(prepared.data)["metadata"] == {"user_id": "client-chosen"}


def test_the_thinking_level_of_the_model_name_is_applied_by_each_upstream():
    claude = json.loads(Claude().call(ONE, prepare(Claude(), MESSAGES, thinking="high", adaptive=True)).body)
    assert claude["thinking"] == {"type": "adaptive"} and claude["output_config"]["effort"] == "high"
    responses = {"model": "gpt-5.5", "input": "hi"}
    codex = json.loads(Codex().call(ONE, prepare(Codex(), responses, endpoint="responses", thinking="low")).body)
    assert codex["reasoning"]["effort"] == "low" and codex["stream"] is True


def test_codex_sends_the_same_bytes_on_every_account_with_its_own_headers():
    prepared = prepare(Codex(), {"model": "gpt-5.5", "input": "hi"}, endpoint="responses")
    one, two = Codex().call(ONE, prepared), Codex().call(TWO, prepared)
    assert one.body is two.body and json.loads(one.body)["prompt_cache_key"]
    assert (one.headers["chatgpt-account-id"], two.headers["chatgpt-account-id"]) == ("acct-1", "acct-2")


def test_codex_compaction_answers_json_from_its_own_path():
    prepared = prepare(Codex(), {"model": "gpt-5.5", "input": "hi"}, endpoint="compact")
    call = Codex().call(ONE, prepared)
    assert call.url.endswith("/responses/compact") and not call.stream
    assert "stream" not in json.loads(call.body)


def test_the_registry_has_one_upstream_per_provider():
    assert {name: u.provider for name, u in UPSTREAMS.items()} == {"claude": "claude", "codex": "codex"}
