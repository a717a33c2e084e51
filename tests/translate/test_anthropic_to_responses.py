"""Anthropic Messages client, Codex upstream (PROTOCOLS.md §6.7, §1.8)."""
from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest
from tests.translate.codex_sse import (
    USAGE,
    client_events,
    custom_call,
    function_call,
    message,
    reasoning,
    run,
    stream,
)

from gateway.translate import anthropic_to_responses
from gateway.translate.anthropic_to_responses import StreamTranslator, prompt_cache_key, request, response
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import Target
from gateway.upstream.codex_body import prepare

TARGET = Target(model="gpt-5.3-codex")
LONG_MCP = "mcp__github_enterprise_server_for_the_platform_team__search_pull_requests_by_label"
USER_ID = json.dumps({"device_id": "9f" * 32, "account_uuid": "aaaaaaaa-1111-2222-3333-444444444444",
                      "session_id": "5b0e7c1a-2d3f-4e5a-8b6c-7d8e9f0a1b2c"})
BASH_SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}

# Shaped like Claude Code 2.1.x (§7.4) on its second tool round: billing
# header + identity + prompt system blocks, adaptive thinking with display
# omitted, context_management, output_config.effort, metadata.user_id as a
# JSON string, tools with cache_control, a role:"system" message inside
# messages, parallel tool_use with thinking, an error result and an image.
CLAUDE_CODE: dict[str, Any] = {
    "model": "gpt-5.3-codex",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.331.a1f; cc_entrypoint=cli;"},
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks.",
         "cache_control": {"type": "ephemeral"}},
    ],
    "thinking": {"type": "adaptive", "display": "omitted"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
    "metadata": {"user_id": USER_ID},
    "temperature": 1,
    "tools": [
        {"name": "Bash", "description": "Executes a bash command", "input_schema": BASH_SCHEMA},
        {"name": "Read", "description": "Reads a file", "input_schema": {"type": "object", "properties": {
            "file_path": {"type": "string"}}}},
        {"name": LONG_MCP, "description": "Search PRs", "input_schema": {"type": "object"},
         "cache_control": {"type": "ephemeral"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>CLAUDE.md says: use uv</system-reminder>"},
            {"type": "text", "text": "What is in this screenshot, and run the tests"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": "openai:gAAAA-previous"},
            {"type": "text", "text": "Running both."},
            {"type": "tool_use", "id": "call_r1", "name": "Bash", "input": {"command": "uv run pytest"}},
            {"type": "tool_use", "id": "call_r2", "name": "Read", "input": {"file_path": "/repo/shot.png"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_r1", "content": "exit 1: 2 failed", "is_error": True},
            {"type": "tool_result", "tool_use_id": "call_r2", "content": [
                {"type": "text", "text": "Image read"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
            {"type": "text", "text": "keep going", "cache_control": {"type": "ephemeral"}}]},
        {"role": "system", "content": "The user switched to plan mode."},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
                                          {"type": "text", "text": ""}]},
        {"role": "user", "content": "go on"},
    ],
}


def test_claude_code_request_becomes_responses_input_in_block_order() -> None:
    out = request(CLAUDE_CODE, TARGET)
    assert out["input"] == [
        {"type": "message", "role": "developer", "content": [
            {"type": "input_text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "input_text",
             "text": "You are an interactive CLI tool that helps users with software engineering tasks."}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "<system-reminder>CLAUDE.md says: use uv</system-reminder>"},
            {"type": "input_text", "text": "What is in this screenshot, and run the tests"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running both."}]},
        {"type": "function_call", "call_id": "call_r1", "name": "Bash", "arguments": "{\"command\": \"uv run pytest\"}"},
        {"type": "function_call", "call_id": "call_r2", "name": "Read",
         "arguments": "{\"file_path\": \"/repo/shot.png\"}"},
        {"type": "function_call_output", "call_id": "call_r1", "output": "Error: exit 1: 2 failed"},
        {"type": "function_call_output", "call_id": "call_r2", "output": [
            {"type": "input_text", "text": "Image read"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "keep going"}]},
        {"type": "message", "role": "developer", "content": [
            {"type": "input_text", "text": "The user switched to plan mode."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go on"}]},
    ]


def test_claude_code_request_settings() -> None:
    out = request(CLAUDE_CODE, TARGET)
    assert out["model"] == "gpt-5.3-codex" and out["stream"] is True
    assert out["reasoning"] == {"effort": "high", "summary": "auto"}
    assert out["tools"] == [
        {"type": "function", "name": "Bash", "description": "Executes a bash command", "parameters": BASH_SCHEMA,
         "strict": False},
        {"type": "function", "name": "Read", "description": "Reads a file", "parameters": {
            "type": "object", "properties": {"file_path": {"type": "string"}}}, "strict": False},
        {"type": "function", "name": LONG_MCP, "description": "Search PRs",
         "parameters": {"type": "object", "properties": {}}, "strict": False},
    ]
    assert out["prompt_cache_key"] == prompt_cache_key(CLAUDE_CODE)
    assert USER_ID not in json.dumps(out)
    for dropped in ("max_tokens", "temperature", "thinking", "context_management", "output_config", "metadata",
                    "system", "messages", "tool_choice"):
        assert dropped not in out
    assert "cache_control" not in json.dumps(out)
    assert "signature" not in json.dumps(out) and "EmwKAhgBEgy" not in json.dumps(out)


def test_claude_code_request_then_prepare_is_a_valid_codex_body() -> None:
    body = prepare(request(CLAUDE_CODE, TARGET))
    assert body["instructions"] == "" and body["store"] is False and body["stream"] is True
    assert body["tools"][2]["name"] == "mcp__search_pull_requests_by_label"
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}


def test_prompt_cache_key_is_stable_per_session() -> None:
    other = {"metadata": {"user_id": USER_ID.replace("5b0e7c1a", "6c1f8d2b")}}
    assert prompt_cache_key(CLAUDE_CODE) == prompt_cache_key({"metadata": {"user_id": USER_ID}})
    assert prompt_cache_key(CLAUDE_CODE) != prompt_cache_key(other)
    assert len(prompt_cache_key(CLAUDE_CODE) or "") == 36
    assert prompt_cache_key({}) is None


# Droid's anthropic provider (§7.4): no beta header, adaptive thinking,
# output_config.effort, cache_control on the last user block.
DROID_ANTHROPIC: dict[str, Any] = {
    "model": "gpt-5-codex", "max_tokens": 64000, "stream": True,
    "system": "You are Droid, an AI software engineering agent built by Factory.",
    "thinking": {"type": "adaptive"}, "output_config": {"effort": "max"},
    "tools": [{"name": "LS", "description": "List", "input_schema": {"type": "object", "properties": {}}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}]}],
}


def test_droid_anthropic_request() -> None:
    out = request(DROID_ANTHROPIC, TARGET)
    assert out["input"][0] == {"type": "message", "role": "developer", "content": [
        {"type": "input_text", "text": "You are Droid, an AI software engineering agent built by Factory."}]}
    assert out["reasoning"] == {"effort": "xhigh", "summary": "auto"}
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False
    assert "prompt_cache_key" not in out


@pytest.mark.parametrize(("thinking", "config", "effort"), [
    ({"type": "enabled", "budget_tokens": 1024}, {}, "low"),
    ({"type": "enabled", "budget_tokens": 10000}, {"effort": "low"}, "high"),
    ({"type": "enabled", "budget_tokens": 31999}, {}, "xhigh"),
    ({"type": "adaptive"}, {"effort": "medium"}, "medium"),
    ({"type": "adaptive"}, {}, None),
    ({"type": "disabled"}, {}, None),
    (None, {"effort": "low"}, "low"),
])
def test_thinking_maps_to_reasoning_effort(thinking: Any, config: dict[str, Any], effort: str | None) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "thinking": thinking, "output_config": config}
    assert request(body, TARGET).get("reasoning") == (effort and {"effort": effort, "summary": "auto"})


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "LS"}, {"type": "function", "name": "LS"}),
])
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    out = request({"messages": [], "tool_choice": choice}, TARGET)
    assert out["tool_choice"] == expected and "parallel_tool_calls" not in out


def test_anthropic_sdk_request_with_documents_and_structured_output() -> None:
    body = {"model": "gpt-5", "max_tokens": 1024, "stop_sequences": ["END"], "top_k": 5,
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "messages": [{"role": "user", "content": [
                {"type": "document", "title": "spec.pdf",
                 "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}]}]}
    out = request(body, TARGET)
    assert out["input"][0]["content"] == [
        {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
        {"type": "input_text", "text": "notes"},
        {"type": "input_image", "image_url": "https://example.com/a.jpg", "detail": "auto"}]
    assert out["text"] == {"format": {"type": "json_schema", "name": "output", "schema": {"type": "object"},
                                      "strict": False}}
    assert "stop_sequences" not in out and "top_k" not in out


def test_error_result_with_only_an_image_gets_an_error_text_part() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": True,
                                                        "content": [{"type": "image", "source": {
                                                            "type": "base64", "media_type": "image/gif", "data": "R0"}}]}]}]}
    assert request(body, TARGET)["input"][0]["output"] == [
        {"type": "input_text", "text": "Error:"},
        {"type": "input_image", "image_url": "data:image/gif;base64,R0", "detail": "auto"}]


def test_rejects_missing_messages() -> None:
    with pytest.raises(TranslationError):
        request({"model": "m"}, TARGET)


# -- non-streaming -------------------------------------------------------------

FINAL_RESPONSE: dict[str, Any] = {
    "id": "resp_01", "object": "response", "status": "completed", "model": "gpt-5.3-codex",
    "output": [
        {"id": "rs_01", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Run tests."}],
         "encrypted_content": "gAAAA-blob"},
        {"id": "msg_01", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Running.", "annotations": []}]},
        {"id": "fc_01", "type": "function_call", "call_id": "call_x1", "name": "Bash",
         "arguments": "{\"command\":\"ls\"}"},
        {"id": "fc_02", "type": "function_call", "call_id": "call_x2", "name": "mcp__search_pull_requests_by_label",
         "arguments": ""},
    ],
    "usage": USAGE,
}


def test_response_becomes_anthropic_message() -> None:
    out = response(FINAL_RESPONSE, {**CLAUDE_CODE, "thinking": {"type": "adaptive"}}, "gpt-5.3-codex")
    assert out == {
        "id": "msg_resp_01", "type": "message", "role": "assistant", "model": "gpt-5.3-codex",
        "content": [
            {"type": "thinking", "thinking": "Run tests.", "signature": "openai:gAAAA-blob"},
            {"type": "text", "text": "Running."},
            {"type": "tool_use", "id": "call_x1", "name": "Bash", "input": {"command": "ls"}},
            {"type": "tool_use", "id": "call_x2", "name": LONG_MCP, "input": {}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 412, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048,
                  "output_tokens": 97},
    }


def test_response_hides_thinking_text_when_display_is_omitted() -> None:
    out = response(FINAL_RESPONSE, CLAUDE_CODE, "m")
    assert out["content"][0] == {"type": "thinking", "thinking": "", "signature": "openai:gAAAA-blob"}


def test_response_round_trips_through_the_next_request() -> None:
    """The thinking block the client sends back never reaches Codex."""
    out = response(FINAL_RESPONSE, CLAUDE_CODE, "m")
    follow_up = {**CLAUDE_CODE, "messages": [
        {"role": "user", "content": "run tests"}, {"role": "assistant", "content": out["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_x1", "content": "ok"},
                                     {"type": "tool_result", "tool_use_id": "call_x2", "content": "none"}]}]}
    body = prepare(request(follow_up, TARGET))
    assert [i["type"] for i in body["input"][1:]] == ["message", "message", "function_call", "function_call",
                                                      "function_call_output", "function_call_output"]
    assert body["input"][4]["name"] == "mcp__search_pull_requests_by_label"
    assert "gAAAA-blob" not in json.dumps(body)


@pytest.mark.parametrize(("status", "reason", "expected"), [
    ("incomplete", "max_output_tokens", "max_tokens"), ("incomplete", "content_filter", "refusal"),
    ("completed", None, "end_turn")])
def test_response_stop_reasons(status: str, reason: str | None, expected: str) -> None:
    resp = {**FINAL_RESPONSE, "status": status, "incomplete_details": reason and {"reason": reason},
            "output": FINAL_RESPONSE["output"][:2]}
    assert response(resp, {}, "m")["stop_reason"] == expected


def test_custom_and_unparseable_calls_become_tool_use_objects() -> None:
    resp = {"id": "r", "status": "completed", "output": [
        {"type": "custom_tool_call", "call_id": "call.p", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "function_call", "call_id": "call_q", "name": "f", "arguments": "{not json"}]}
    assert response(resp, {}, "m")["content"] == [
        {"type": "tool_use", "id": "call_p", "name": "apply_patch", "input": {"input": "*** Begin Patch"}},
        {"type": "tool_use", "id": "call_q", "name": "f", "input": {"_raw": "{not json"}}]


# -- streaming -----------------------------------------------------------------

def events(output: bytes) -> list[tuple[str, dict[str, Any]]]:
    parsed = client_events(output)
    assert all(e.event == e.json()["type"] for e in parsed)
    return [(e.event, e.json()) for e in parsed]


def shape(output: bytes) -> list[tuple[Any, ...]]:
    """Each event reduced to (type, index, the delta's payload or the block type)."""
    out: list[tuple[Any, ...]] = []
    for kind, data in events(output):
        if kind == "content_block_start":
            out.append((kind, data["index"], data["content_block"]["type"]))
        elif kind == "content_block_delta":
            delta = dict(data["delta"])
            out.append((kind, data["index"], delta.pop("type"), *delta.values()))
        elif kind == "content_block_stop":
            out.append((kind, data["index"]))
        elif kind == "message_delta":
            out.append((kind, data["delta"]["stop_reason"]))
        else:
            out.append((kind,))
    return out


def check_invariants(output: bytes) -> dict[int, dict[str, Any]]:
    """Blocks start and stop once each, in index order, without overlap; returns them rebuilt."""
    seq = events(output)
    assert seq[0][0] == "message_start" and seq[-1][0] == "message_stop" and seq[-2][0] == "message_delta"
    blocks: dict[int, dict[str, Any]] = {}
    json_parts: dict[int, str] = {}
    open_index = None
    for kind, data in seq[1:-2]:
        index = data["index"]
        if kind == "content_block_start":
            assert open_index is None and index == len(blocks)
            open_index, blocks[index] = index, dict(data["content_block"])
        elif kind == "content_block_delta":
            assert index == open_index
            delta = data["delta"]
            if delta["type"] == "input_json_delta":
                json_parts[index] = json_parts.get(index, "") + delta["partial_json"]
            else:
                key = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}[delta["type"]]
                blocks[index][key] = blocks[index].get(key, "") + delta[key]
        else:
            assert kind == "content_block_stop" and index == open_index
            open_index = None
    assert open_index is None
    for index, raw in json_parts.items():
        blocks[index]["input"] = json.loads(raw)
    return blocks


FULL_STREAM = stream([
    *reasoning(0, "rs_01", [["Need to ", "run tests."], ["Then read."]], encrypted="gAAAA-blob"),
    *message(1, "msg_01", ["Run", "ning ", "bö"]),
    *function_call(2, "fc_01", "call_x1", "Bash", ["{\"comm", "and\": \"ls -la\"}"]),
    *function_call(3, "fc_02", "call_x2", "mcp__search_pull_requests_by_label", [], full="{\"label\": \"ui\"}"),
])
CLAUDE_CODE_SHOWN = {**CLAUDE_CODE, "thinking": {"type": "adaptive"}}


@pytest.mark.parametrize("seed", range(5))
def test_full_stream_has_the_exact_anthropic_event_order(seed: int) -> None:
    translator = StreamTranslator(CLAUDE_CODE_SHOWN, "gpt-5.3-codex")
    out = run(translator, FULL_STREAM, seed)
    assert shape(out) == [
        ("message_start",),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta", "Need to "),
        ("content_block_delta", 0, "thinking_delta", "run tests."),
        ("content_block_delta", 0, "thinking_delta", "\n\n"),
        ("content_block_delta", 0, "thinking_delta", "Then read."),
        ("content_block_delta", 0, "signature_delta", "openai:gAAAA-blob"),
        ("content_block_stop", 0),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta", "Run"),
        ("content_block_delta", 1, "text_delta", "ning "),
        ("content_block_delta", 1, "text_delta", "bö"),
        ("content_block_stop", 1),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta", "{\"comm"),
        ("content_block_delta", 2, "input_json_delta", "and\": \"ls -la\"}"),
        ("content_block_stop", 2),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta", "{\"label\": \"ui\"}"),
        ("content_block_stop", 3),
        ("message_delta", "tool_use"),
        ("message_stop",),
    ]
    seq = events(out)
    assert seq[0][1]["message"] == {
        "id": "msg_resp_01", "type": "message", "role": "assistant", "model": "gpt-5.3-codex", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": 0}}
    assert seq[-2][1]["usage"] == {"input_tokens": 412, "cache_creation_input_tokens": 0,
                                   "cache_read_input_tokens": 2048, "output_tokens": 97}
    blocks = check_invariants(out)
    assert blocks[2] == {"type": "tool_use", "id": "call_x1", "name": "Bash", "input": {"command": "ls -la"}}
    assert blocks[3]["name"] == LONG_MCP and blocks[3]["input"] == {"label": "ui"}
    assert translator.done and translator.finish() == []


def test_anthropic_sdk_stream_helper_accumulates_the_translation() -> None:
    out = run(StreamTranslator(CLAUDE_CODE_SHOWN, "gpt-5.3-codex"), FULL_STREAM)
    transport = httpx2.MockTransport(lambda request: httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=out))
    client = anthropic.Anthropic(api_key="k", base_url="http://gw", http_client=httpx2.Client(transport=transport))
    with client.messages.stream(model="gpt-5.3-codex", max_tokens=1024,
                                messages=[{"role": "user", "content": "hi"}]) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert final.content[0].thinking == "Need to run tests.\n\nThen read."  # type: ignore[union-attr]
    assert final.content[0].signature == "openai:gAAAA-blob"  # type: ignore[union-attr]
    assert final.content[1].text == "Running bö"  # type: ignore[union-attr]
    assert final.content[2].input == {"command": "ls -la"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 412 and final.usage.cache_read_input_tokens == 2048


def test_anthropic_sdk_raises_on_a_failed_stream() -> None:
    failed = stream(message(0, "msg_1", ["Par"]), terminal="response.failed", extra={"error": {
        "code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 1.5s."}})
    out = run(StreamTranslator({}, "m"), failed)
    assert events(out)[-1] == ("error", {"type": "error", "error": {
        "type": "rate_limit_error", "message": "Rate limit reached. Please try again in 1.5s."}})
    transport = httpx2.MockTransport(lambda request: httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=out))
    client = anthropic.Anthropic(api_key="k", base_url="http://gw", http_client=httpx2.Client(transport=transport),
                                 max_retries=0)
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s:
            s.get_final_message()


def test_display_omitted_keeps_the_thinking_block_but_not_its_text() -> None:
    out = run(StreamTranslator(CLAUDE_CODE, "m"), FULL_STREAM)
    assert shape(out)[1:4] == [("content_block_start", 0, "thinking"),
                               ("content_block_delta", 0, "signature_delta", "openai:gAAAA-blob"),
                               ("content_block_stop", 0)]


def test_reasoning_without_summary_events_is_built_from_the_done_item() -> None:
    items = reasoning(0, "rs_1", [["Thought."]])
    bare = [items[0], {**items[-1]}]  # added, then done with the full summary
    out = run(StreamTranslator({}, "m"), stream([*bare, *message(1, "msg_1", ["Hi"])]))
    blocks = check_invariants(out)
    assert blocks[0] == {"type": "thinking", "thinking": "Thought.", "signature": "openai:gAAAAB-enc"}
    assert blocks[1] == {"type": "text", "text": "Hi"}


def test_reasoning_with_nothing_to_show_is_skipped() -> None:
    out = run(StreamTranslator({}, "m"), stream([*reasoning(0, "rs_1", [], encrypted=None),
                                                *message(1, "msg_1", ["Hi"])]))
    assert shape(out)[1] == ("content_block_start", 0, "text")


def test_empty_text_deltas_never_open_a_block() -> None:
    out = run(StreamTranslator({}, "m"), stream(message(0, "msg_1", ["", ""])))
    assert shape(out) == [("message_start",), ("message_delta", "end_turn"), ("message_stop",)]


def test_interleaved_items_are_serialised_into_consecutive_blocks() -> None:
    a = function_call(0, "fc_a", "call_a", "Bash", ["{\"command\":", "\"a\"}"])
    b = function_call(1, "fc_b", "call_b", "Bash", ["{\"command\":", "\"b\"}"])
    interleaved = [a[0], b[0], a[1], b[1], b[2], b[3], a[2], b[4], a[3], a[4]]
    blocks = check_invariants(run(StreamTranslator({}, "m"), stream(interleaved)))
    assert [(b["id"], b["input"]) for b in blocks.values()] == [("call_a", {"command": "a"}),
                                                                 ("call_b", {"command": "b"})]


def test_items_left_open_at_completion_are_closed_in_order() -> None:
    a = function_call(0, "fc_a", "call_a", "Bash", ["{\"command\":\"a\"}"])
    b = message(1, "msg_b", ["Done"])
    out = run(StreamTranslator({}, "m"), stream([a[0], a[1], *b[:3]], output=[]))
    blocks = check_invariants(out)
    assert blocks[0]["input"] == {"command": "a"} and blocks[1] == {"type": "text", "text": "Done"}


def test_custom_tool_call_streams_as_an_input_object() -> None:
    patch = "*** Begin Patch\n*** Update File: a.py\n-\"old\"\n+\"new\"\n*** End Patch"
    pieces = [patch[:10], patch[10:31], patch[31:]]
    blocks = check_invariants(run(StreamTranslator({}, "m"), stream(custom_call(0, "ctc_1", "call_p", "apply_patch",
                                                                                 pieces))))
    assert blocks[0] == {"type": "tool_use", "id": "call_p", "name": "apply_patch", "input": {"input": patch}}


def test_incomplete_stream_stops_with_max_tokens() -> None:
    out = run(StreamTranslator({}, "m"), stream(message(0, "msg_1", ["Par"]), terminal="response.incomplete"))
    assert shape(out)[-2:] == [("message_delta", "max_tokens"), ("message_stop",)]


def test_error_event_and_early_end_become_error_events() -> None:
    out = run(StreamTranslator({}, "m"), stream([], terminal="error", extra={
        "code": "context_length_exceeded", "message": "Your input exceeds the context window"}))
    assert events(out)[-1][1]["error"]["type"] == "invalid_request_error"
    cut = run(StreamTranslator({}, "m"), stream(message(0, "msg_1", ["Hi"]), terminal=""))
    assert events(cut)[-1] == ("error", {"type": "error", "error": {
        "type": "api_error", "message": "upstream stream ended early"}})


def test_fail_is_a_no_op_after_the_end() -> None:
    translator = StreamTranslator({}, "m")
    run(translator, stream(message(0, "msg_1", ["Hi"])))
    assert translator.fail("overloaded_error", "Overloaded") == []
    fresh = StreamTranslator({}, "m")
    assert events(b"".join(fresh.fail("overloaded_error", "Overloaded"))) == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]


def test_module_exports_the_stream_translator() -> None:
    assert anthropic_to_responses.StreamTranslator is StreamTranslator


def test_deferred_tools_do_not_reach_codex_as_functions() -> None:
    # Claude Code 2.1.332 offers a GPT model a "never call this" placeholder first, marked defer_loading
    # (loaded only through tool search, which Codex lacks); as a plain function the model would call it.
    tools = [{"name": "DeferredToolPlaceholder", "input_schema": {"type": "object", "properties": {}},
              "defer_loading": True},
             {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]
    body = {"model": "gpt-5.5", "max_tokens": 100, "tools": tools,
            "messages": [{"role": "user", "content": "hi"}]}
    assert [t["name"] for t in request(body, TARGET)["tools"]] == ["Bash"]
