"""Remote compaction (``POST /v1/responses/compact``), as Codex CLI's built-in OpenAI provider calls it.

The endpoint answers one JSON object whose ``output`` replaces the history: the
user messages and an opaque ``compaction`` item, which later /responses calls
carry back to the backend.
"""
from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "gpt-5.5"
HISTORY = [
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]},
    {"type": "function_call", "id": "fc_1", "call_id": "call_ls", "name": "shell", "arguments": '{"command":["ls"]}'},
    {"type": "function_call_output", "call_id": "call_ls", "output": "a.txt"},
    {"type": "message", "role": "assistant", "id": "msg_1",
     "content": [{"type": "output_text", "text": "One file.", "annotations": []}]},
]
SHELL = {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}, "strict": False}


@pytest.fixture
def key(api_key_factory):
    return api_key_factory(models=["gpt-*", "claude-*"])[1]


def compact_body(model: str = MODEL) -> dict[str, Any]:
    """What Codex CLI sends: CompactionInput, no stream / store / include."""
    return {"model": model, "input": HISTORY, "instructions": "You are Codex.", "tools": [SHELL],
            "parallel_tool_calls": True, "reasoning": {"effort": "medium", "summary": "auto"},
            "prompt_cache_key": "sess-compact"}


def post(gateway: str, key: str, body: dict[str, Any], path: str = "/v1/responses/compact") -> httpx.Response:
    return httpx.post(gateway + path, json=body, headers={"authorization": f"Bearer {key}", "originator": "codex_exec"},
                      timeout=30)


@pytest.mark.parametrize("path", ["/v1/responses/compact", "/backend-api/codex/responses/compact"])
def test_compaction_reaches_the_codex_compact_endpoint(path, gateway, key, credential_factory, fake):
    credential = credential_factory("codex")
    r = post(gateway, key, {**compact_body(), "stream": True, "store": False, "include": ["reasoning.encrypted_content"]},
             path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    result = r.json()
    assert [i["type"] for i in result["output"]] == ["message", "compaction"]
    assert result["output"][0]["content"][0]["text"] == "List the files"

    sent = fake.requests("codex")[-1]
    assert sent.path == "/backend-api/codex/responses/compact"
    assert not {"stream", "store", "include"} & set(sent.json)  # the endpoint refuses them
    assert sent.json["prompt_cache_key"] == "sess-compact" and sent.json["instructions"] == "You are Codex."
    assert all("id" not in i for i in sent.json["input"])  # never-stored ids are stripped, as for /responses
    assert sent.headers["chatgpt-account-id"] == credential.account_id and sent.headers["originator"] == "codex_exec"

    [record] = wait_for_usage(1)
    reported = fake.last_usage("codex")
    assert (record.endpoint, record.stream, record.outcome, record.status_code) == ("compact", False, "ok", 200)
    assert record.input_tokens + record.cache_read_tokens == reported["input_tokens"] > 0
    assert record.credential_id == credential.pk


def test_the_compacted_history_carries_on_in_the_next_turn(gateway, key, credential_factory, fake):
    credential_factory("codex")
    compacted = post(gateway, key, compact_body()).json()["output"]
    body = {"model": MODEL, "stream": False, "input": [*compacted, {"type": "message", "role": "user",
                                                                  "content": [{"type": "input_text", "text": "Go on"}]}]}
    r = httpx.post(gateway + "/v1/responses", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["output"][-1]["content"][0]["text"] == "Echo: Go on"
    # The backend verified its own compaction blob on the way back.
    assert [i["type"] for i in fake.requests("codex")[-1].json["input"]] == ["message", "compaction", "message"]


def test_a_compaction_the_backend_refuses_comes_back_as_its_400(gateway, key, credential_factory, fake):
    credential_factory("codex")
    body = {**compact_body(), "input": [*HISTORY, {"type": "compaction", "encrypted_content": "cmp_forged"}]}
    r = post(gateway, key, body)
    assert r.status_code == 400
    assert "could not be verified" in r.json()["error"]["message"]
    assert wait_for_usage(1)[0].outcome == "upstream_error"


def test_a_claude_model_cannot_be_compacted_remotely_and_says_what_to_do(gateway, key, credential_factory, fake):
    credential_factory("claude")
    r = post(gateway, key, compact_body("claude-sonnet-4-6"))
    assert r.status_code == 501
    error = r.json()["error"]
    assert error["code"] == "compaction_unsupported" and "compacts locally" in error["message"]
    assert fake.requests("claude") == []
    [record] = wait_for_usage(1)
    assert (record.endpoint, record.outcome, record.status_code) == ("compact", "rejected", 501)


def test_compaction_fails_over_on_a_rate_limited_account(gateway, key, credential_factory, fake):
    from credentials.models import Credential

    credential_factory("codex")
    credential_factory("codex")
    fake.add_fault("codex", "rate_limited", retry_after=30)  # whichever account is asked first
    r = post(gateway, key, compact_body())
    assert r.status_code == 200, r.text
    limited, served = [req.headers["chatgpt-account-id"] for req in fake.requests("codex")]
    assert limited != served
    assert Credential.objects.get(account_id=limited).cooldown_until is not None
    assert wait_for_usage(1)[0].attempts == 2


TRIGGER = {"type": "compaction_trigger"}


def test_in_band_compaction_trigger_passes_through_to_codex(gateway, key, credential_factory, fake):
    credential_factory("codex")
    body = {"model": MODEL, "stream": True, "input": [*HISTORY, TRIGGER], "tools": [SHELL]}
    with httpx.stream("POST", gateway + "/v1/responses", json=body, headers={"authorization": f"Bearer {key}"},
                      timeout=30) as r:
        raw = r.read().decode()
    assert r.status_code == 200, raw
    completed = [json.loads(line[5:]) for line in raw.splitlines()
                 if line.startswith("data:") and "response.completed" in line]
    assert [i["type"] for i in completed[0]["response"]["output"]] == ["compaction"]
    assert fake.requests("codex")[-1].json["input"][-1] == TRIGGER


def test_in_band_compaction_for_a_claude_model_is_refused_plainly(gateway, key, credential_factory, fake):
    credential_factory("claude")
    body = {"model": "claude-sonnet-4-6", "stream": True, "input": [*HISTORY, TRIGGER]}
    r = httpx.post(gateway + "/v1/responses", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 501
    assert "only available for ChatGPT (Codex) models" in r.json()["error"]["message"]
    assert fake.requests("claude") == []
