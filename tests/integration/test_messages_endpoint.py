"""/v1/messages to Claude through real HTTP, with the official anthropic SDK as the client."""
from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-sonnet-4-6"


@pytest.fixture
def client(gateway, api_key_factory):
    _, raw = api_key_factory(models=["claude-*"])
    with anthropic.Anthropic(base_url=gateway, api_key=raw, max_retries=0) as c:
        yield c


def test_non_stream_message_reaches_claude_with_oauth_identity(client, credential_factory, fake):
    credential = credential_factory()
    message = client.messages.create(model=MODEL, max_tokens=200, system="Be terse.",
                                     messages=[{"role": "user", "content": "Hello there"}])
    assert message.content[0].text == "Echo: Hello there"

    sent = fake.requests("claude")[-1]
    assert sent.path == "/v1/messages" and sent.query.get("beta") == "true"
    assert sent.headers["authorization"] == f"Bearer {credential.access_token}"
    assert "x-api-key" not in sent.headers
    assert "oauth-2025-04-20" in sent.headers["anthropic-beta"].split(",")
    assert sent.json["system"][0]["text"] == "You are Claude Code, Anthropic's official CLI for Claude."
    assert sent.json["system"][1]["text"] == "Be terse."
    assert sent.json["model"] == MODEL


def test_stream_is_relayed_and_usage_recorded(client, credential_factory, fake, api_key_factory):
    credential_factory()
    system = [{"type": "text", "text": "Be terse. " * 500, "cache_control": {"type": "ephemeral"}}]  # cacheable
    for turn in ("First", "Stream please"):  # the second turn reads what the first wrote, and writes its own
        with client.messages.stream(model=MODEL, max_tokens=200, system=system,
                                    messages=[{"role": "user", "content": [{"type": "text", "text": turn,
                                                                             "cache_control": {"type": "ephemeral"}}]}]) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
    assert text == "Echo: Stream please"
    reported = fake.last_usage("claude")
    assert final.usage.output_tokens == reported["output_tokens"]

    record = wait_for_usage(2)[-1]
    assert record.stream is True and record.status_code == 200 and record.outcome == "ok"
    assert record.endpoint == "messages" and record.requested_model == MODEL
    assert record.input_tokens == reported["input_tokens"]
    assert record.cache_read_tokens == reported["cache_read_input_tokens"] > 0
    assert record.cache_write_tokens == reported["cache_creation_input_tokens"] > 0
    assert record.output_tokens == reported["output_tokens"]
    assert record.ttfb_ms is not None and record.duration_ms >= record.ttfb_ms
    assert record.credential_id is not None and record.key_prefix.startswith("sk-ph-")


def test_x_api_key_header_and_v1_v1_alias_work(gateway, api_key_factory, credential_factory):
    credential_factory()
    _, raw = api_key_factory()
    body = {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    for path in ("/v1/messages", "/v1/v1/messages"):
        r = httpx.post(gateway + path, json=body, headers={"x-api-key": raw, "anthropic-version": "2023-06-01"})
        assert r.status_code == 200, r.text
        assert r.json()["content"][0]["text"] == "Echo: hi"


def test_tool_round_trip(client, credential_factory):
    credential_factory()
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    messages = [{"role": "user", "content": "Use the tool for Paris"}]
    with client.messages.stream(model=MODEL, max_tokens=300, tools=tools, messages=messages) as s:
        first = s.get_final_message()
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"}

    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]}]
    second = client.messages.create(model=MODEL, max_tokens=300, tools=tools, messages=messages)
    assert second.content[0].text == "Tool said: 18C"


def test_thinking_blocks_round_trip_with_signature(client, credential_factory):
    credential_factory()
    thinking = {"type": "enabled", "budget_tokens": 2048}
    tools = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]
    messages = [{"role": "user", "content": "Think, then use a tool"}]
    with client.messages.stream(model=MODEL, max_tokens=4096, thinking=thinking, tools=tools, messages=messages) as s:
        first = s.get_final_message()
    assert [b.type for b in first.content][0] == "thinking"
    assert first.content[0].signature
    call = next(b for b in first.content if b.type == "tool_use")
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "found"}]}]
    second = client.messages.create(model=MODEL, max_tokens=4096, thinking=thinking, tools=tools, messages=messages)
    assert second.content[-1].text == "Tool said: found"


def test_claude_code_requests_pass_through_unchanged(gateway, api_key_factory, credential_factory, fake):
    credential_factory()
    _, raw = api_key_factory()
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.331.abc; cc_entrypoint=cli;"},
              {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
              {"type": "text", "text": "Project rules."}]
    body = {"model": MODEL, "max_tokens": 100, "stream": True, "system": system,
            "metadata": {"user_id": json.dumps({"device_id": "d", "account_uuid": "a", "session_id": "s"})},
            "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {raw}", "anthropic-version": "2023-06-01", "x-app": "cli",
               "user-agent": "claude-cli/2.1.331 (external, cli)",
               "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}
    with httpx.stream("POST", gateway + "/v1/messages?beta=true", json=body, headers=headers) as r:
        assert r.status_code == 200
        events = r.read().decode()
    assert "event: message_stop" in events
    sent = fake.requests("claude")[-1]
    assert sent.json["system"] == system
    assert sent.json["metadata"] == body["metadata"]
    assert sent.headers["anthropic-beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20"
    assert sent.headers["user-agent"].startswith("claude-cli/")
