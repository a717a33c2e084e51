"""Chat Completions client, Codex upstream (PROTOCOLS.md §6.5, §6.6, §2.5)."""
from __future__ import annotations

import json
from typing import Any

import httpx
import openai
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

from gateway.formats.sse import Event
from gateway.translate import chat_to_responses
from gateway.translate.chat_to_responses import StreamTranslator, request, response
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import Target
from gateway.upstream.codex_body import prepare

TARGET = Target(model="gpt-5-codex")
LONG_MCP = "mcp__github_enterprise_server_for_the_platform_team__search_pull_requests_by_label"

# Shaped like Droid's generic-chat-completion-api provider (§7.4), in a tool loop
# with two parallel calls and an image.
DROID_CHAT: dict[str, Any] = {
    "model": "gpt-5-codex",
    "stream": True,
    "stream_options": {"include_usage": True},
    "temperature": 0.2,
    "max_tokens": 32000,
    "messages": [
        {"role": "system", "content": "You are Droid, an AI software engineering agent built by Factory."},
        {"role": "user", "content": [
            {"type": "text", "text": "What does this screenshot show? Then list src/."},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}}]},
        {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "call_a1", "type": "function", "function": {"name": "LS", "arguments": "{\"path\":\"src\"}"}},
            {"id": "call_b2", "type": "function", "function": {"name": LONG_MCP, "arguments": "{\"label\":\"bug\"}"}}]},
        {"role": "tool", "tool_call_id": "call_a1", "content": "app.py\nutil.py"},
        {"role": "tool", "tool_call_id": "call_b2", "content": [{"type": "text", "text": "#12 crash"}]},
        {"role": "developer", "content": "Answer in one line."},
        {"role": "user", "content": "Summarise."},
    ],
    "tools": [
        {"type": "function", "function": {"name": "LS", "description": "List a directory",
                                          "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                         "required": ["path"]}}},
        {"type": "function", "function": {"name": LONG_MCP, "description": "Search PRs",
                                          "parameters": {"type": "object", "properties": {"label": {"type": "string"}}},
                                          "strict": True}},
    ],
    "tool_choice": "auto",
    "reasoning_effort": "high",
}


def test_droid_chat_request_becomes_responses_input_in_order() -> None:
    out = request(DROID_CHAT, TARGET)
    assert out["input"] == [
        {"type": "message", "role": "developer", "content": [
            {"type": "input_text", "text": "You are Droid, an AI software engineering agent built by Factory."}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What does this screenshot show? Then list src/."},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        {"type": "function_call", "call_id": "call_a1", "name": "LS", "arguments": "{\"path\":\"src\"}"},
        {"type": "function_call", "call_id": "call_b2", "name": LONG_MCP, "arguments": "{\"label\":\"bug\"}"},
        {"type": "function_call_output", "call_id": "call_a1", "output": "app.py\nutil.py"},
        {"type": "function_call_output", "call_id": "call_b2", "output": "#12 crash"},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer in one line."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Summarise."}]},
    ]
    assert out["tools"][0] == {"type": "function", "name": "LS", "description": "List a directory",
                               "parameters": DROID_CHAT["tools"][0]["function"]["parameters"], "strict": False}
    assert out["tools"][1]["strict"] is True
    assert out["tool_choice"] == "auto"
    assert out["reasoning"] == {"effort": "high", "summary": "auto"}
    assert out["model"] == "gpt-5-codex" and out["stream"] is True
    for dropped in ("temperature", "max_tokens", "max_output_tokens", "stream_options", "messages"):
        assert dropped not in out


def test_request_then_prepare_is_a_valid_codex_body() -> None:
    body = prepare(request(DROID_CHAT, TARGET))
    assert body["instructions"] == "" and body["store"] is False and body["stream"] is True
    assert all(len(t["name"]) <= 64 for t in body["tools"])
    assert body["input"][4]["name"] == body["tools"][1]["name"] == "mcp__search_pull_requests_by_label"


def test_openai_sdk_style_request_with_options() -> None:
    body = {"model": "gpt-5", "messages": [
        {"role": "user", "content": "Give JSON"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_p", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin Patch"}}]},
        {"role": "tool", "tool_call_id": "call_p", "content": "Done"}],
        "tools": [{"type": "custom", "custom": {"name": "apply_patch", "description": "Patch files",
                                                "format": {"type": "text"}}}],
        "tool_choice": {"type": "function", "function": {"name": "apply_patch"}},
        "parallel_tool_calls": False, "verbosity": "low", "prompt_cache_key": "k1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": True,
                                                                   "schema": {"type": "object"}}}}
    out = request(body, TARGET)
    assert out["input"][1:] == [
        {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done"}]
    assert out["tools"] == [{"type": "custom", "name": "apply_patch", "description": "Patch files",
                             "format": {"type": "text"}}]
    assert out["tool_choice"] == {"type": "function", "name": "apply_patch"}
    assert out["parallel_tool_calls"] is False
    assert out["text"] == {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"},
                                      "strict": True}, "verbosity": "low"}
    assert out["prompt_cache_key"] == "k1"
    assert "reasoning" not in out  # codex_body supplies the default


@pytest.mark.parametrize("body", [
    {"messages": [{"role": "user", "content": "hi"}], "n": 2},
    {"messages": []},
    {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA"}}]}]},
    {"messages": [{"role": "function", "name": "f", "content": "x"}]},
])
def test_unmappable_requests_are_400(body: dict[str, Any]) -> None:
    with pytest.raises(TranslationError):
        request(body, TARGET)


# -- non-streaming -------------------------------------------------------------

FINAL_RESPONSE: dict[str, Any] = {
    "id": "resp_01", "object": "response", "created_at": 1767225600, "status": "completed", "model": "gpt-5-codex",
    "output": [
        {"id": "rs_01", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Need the listing."},
                                                          {"type": "summary_text", "text": "And PRs."}],
         "encrypted_content": "gAAAA"},
        {"id": "msg_01", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
        {"id": "fc_01", "type": "function_call", "status": "completed", "call_id": "call_c3", "name": "LS",
         "arguments": "{\"path\":\".\"}"},
        {"id": "fc_02", "type": "function_call", "status": "completed", "call_id": "call_d4",
         "name": "mcp__search_pull_requests_by_label", "arguments": "{\"label\":\"ui\"}"},
    ],
    "usage": USAGE,
}


def test_response_becomes_chat_completion_with_tool_names_mapped_back() -> None:
    out = response(FINAL_RESPONSE, DROID_CHAT, "gpt-5-codex")
    assert out == {
        "id": "chatcmpl-resp_01", "object": "chat.completion", "created": 1767225600, "model": "gpt-5-codex",
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking.", "refusal": None,
            "reasoning_content": "Need the listing.\n\nAnd PRs.",
            "tool_calls": [
                {"id": "call_c3", "type": "function", "function": {"name": "LS", "arguments": "{\"path\":\".\"}"}},
                {"id": "call_d4", "type": "function", "function": {"name": LONG_MCP, "arguments": "{\"label\":\"ui\"}"}},
            ]}}],
        "usage": {"prompt_tokens": 2460, "completion_tokens": 97, "total_tokens": 2557,
                  "prompt_tokens_details": {"cached_tokens": 2048},
                  "completion_tokens_details": {"reasoning_tokens": 64}},
    }


def test_incomplete_response_finishes_with_length() -> None:
    resp = {**FINAL_RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
            "output": FINAL_RESPONSE["output"][1:2]}
    choice = response(resp, {}, "m")["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] == "Checking."


def test_tool_only_response_has_null_content() -> None:
    resp = {**FINAL_RESPONSE, "output": FINAL_RESPONSE["output"][2:3]}
    assert response(resp, {}, "m")["choices"][0]["message"]["content"] is None


# -- streaming -----------------------------------------------------------------

def chunks(output: bytes) -> list[Any]:
    return [e.data if e.data == "[DONE]" else e.json() for e in client_events(output)]


def deltas(output: bytes) -> list[Any]:
    return [c if c == "[DONE]" else (c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
            if c.get("choices") else {"usage": c["usage"]} for c in chunks(output)]


TEXT_STREAM = stream([*reasoning(0, "rs_01", [["Need ", "the listing."], ["Then answer."]]),
                      *message(1, "msg_01", ["Hel", "lo ", "wörld"])])


@pytest.mark.parametrize("seed", range(5))
def test_text_and_reasoning_stream_with_usage(seed: int) -> None:
    translator = StreamTranslator(DROID_CHAT, "gpt-5-codex")
    out = run(translator, TEXT_STREAM, seed)
    assert deltas(out) == [
        ({"role": "assistant", "content": ""}, None),
        ({"reasoning_content": "Need "}, None),
        ({"reasoning_content": "the listing."}, None),
        ({"reasoning_content": "\n\n"}, None),
        ({"reasoning_content": "Then answer."}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo "}, None),
        ({"content": "wörld"}, None),
        ({}, "stop"),
        {"usage": {"prompt_tokens": 2460, "completion_tokens": 97, "total_tokens": 2557,
                   "prompt_tokens_details": {"cached_tokens": 2048},
                   "completion_tokens_details": {"reasoning_tokens": 64}}},
        "[DONE]",
    ]
    parsed = chunks(out)[:-1]
    assert {c["id"] for c in parsed} == {"chatcmpl-resp_01"}
    assert {c["created"] for c in parsed} == {1767225600}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-5-codex" for c in parsed)
    assert all(c["usage"] is None for c in parsed[:-1])
    assert translator.done


PARALLEL_STREAM = stream([
    *message(0, "msg_01", ["Checking both."]),
    *function_call(1, "fc_01", "call_a1", "LS", ["{\"pa", "th\": \"src\"}"]),
    # arguments only in output_item.done, as some upstreams send them
    *function_call(2, "fc_02", "call_b2", "mcp__search_pull_requests_by_label", [], full="{\"label\": \"bug\"}"),
])


@pytest.mark.parametrize("seed", range(5))
def test_parallel_function_calls_get_tool_indexes_in_order(seed: int) -> None:
    out = run(StreamTranslator({**DROID_CHAT, "stream_options": None}, "gpt-5-codex"), PARALLEL_STREAM, seed)
    assert deltas(out) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Checking both."}, None),
        ({"tool_calls": [{"index": 0, "id": "call_a1", "type": "function",
                          "function": {"name": "LS", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "{\"pa"}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "th\": \"src\"}"}}]}, None),
        ({"tool_calls": [{"index": 1, "id": "call_b2", "type": "function",
                          "function": {"name": LONG_MCP, "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 1, "function": {"arguments": "{\"label\": \"bug\"}"}}]}, None),
        ({}, "tool_calls"),
        "[DONE]",
    ]
    assert all("usage" not in c for c in chunks(out)[:-1])  # include_usage off: no usage at all


def test_interleaved_argument_deltas_are_routed_by_item_id() -> None:
    a = function_call(0, "fc_a", "call_a", "LS", ["{\"path\":", "\"a\"}"])
    b = function_call(1, "fc_b", "call_b", "LS", ["{\"path\":", "\"b\"}"])
    interleaved = [a[0], b[0], a[1], b[1], a[2], b[2], b[3], a[3], b[4], a[4]]
    out = run(StreamTranslator({}, "m"), stream(interleaved))
    args: dict[int, str] = {}
    ids: dict[int, str] = {}
    for c in chunks(out)[:-1]:
        for call in c["choices"][0]["delta"].get("tool_calls") or []:
            args[call["index"]] = args.get(call["index"], "") + call["function"]["arguments"]
            ids.setdefault(call["index"], call.get("id"))
    assert ids == {0: "call_a", 1: "call_b"}
    assert {k: json.loads(v) for k, v in args.items()} == {0: {"path": "a"}, 1: {"path": "b"}}


def test_custom_tool_call_streams_as_custom_input() -> None:
    out = run(StreamTranslator({}, "m"), stream(custom_call(0, "ctc_1", "call_p", "apply_patch",
                                                            ["*** Begin", " Patch"])))
    assert deltas(out)[1:4] == [
        ({"tool_calls": [{"index": 0, "id": "call_p", "type": "custom",
                          "custom": {"name": "apply_patch", "input": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "custom": {"input": "*** Begin"}}]}, None),
        ({"tool_calls": [{"index": 0, "custom": {"input": " Patch"}}]}, None),
    ]


def test_text_sent_only_in_output_item_done_is_not_lost() -> None:
    items = message(0, "msg_1", ["Hello"])
    out = run(StreamTranslator({}, "m"), stream([items[0], items[-1]]))
    assert deltas(out) == [({"role": "assistant", "content": ""}, None), ({"content": "Hello"}, None),
                           ({}, "stop"), "[DONE]"]


def test_incomplete_stream_finishes_with_length() -> None:
    out = run(StreamTranslator({}, "m"), stream(message(0, "msg_1", ["Part"]), terminal="response.incomplete"))
    assert deltas(out)[-2:] == [({}, "length"), "[DONE]"]


def test_failed_stream_ends_with_error_chunk_and_done() -> None:
    failed = stream(message(0, "msg_1", ["Par"]), terminal="response.failed", extra={"error": {
        "code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 1.5s."}})
    translator = StreamTranslator({}, "m")
    out = run(translator, failed, finish=False)
    assert chunks(out)[-2:] == [{"error": {"message": "Rate limit reached. Please try again in 1.5s.",
                                           "type": "rate_limit_exceeded", "param": None,
                                           "code": "rate_limit_exceeded"}}, "[DONE]"]
    assert translator.done and translator.finish() == [] and translator.fail("server_error", "x") == []


def test_error_event_ends_the_stream() -> None:
    out = run(StreamTranslator({}, "m"), stream([], terminal="error", extra={
        "code": "context_length_exceeded", "message": "Your input exceeds the context window", "param": None}))
    assert chunks(out)[-2]["error"]["type"] == "invalid_request_error"
    assert chunks(out)[-1] == "[DONE]"


def test_stream_cut_short_reports_an_error_on_finish() -> None:
    out = run(StreamTranslator({}, "m"), stream(message(0, "msg_1", ["Hi"]), terminal=""))
    assert [c if c == "[DONE]" else list(c) for c in chunks(out)][-2:] == [["error"], "[DONE]"]
    assert chunks(out)[-2]["error"]["message"] == "upstream stream ended early"


def test_fail_before_any_event_still_ends_with_done() -> None:
    translator = StreamTranslator({}, "m")
    assert translator.fail("server_error", "upstream connection lost")[-1] == b"data: [DONE]\n\n"
    assert translator.feed(Event("response.created", "{}")) == []


def test_openai_sdk_stream_helper_accumulates_the_translation() -> None:
    out = run(StreamTranslator(DROID_CHAT, "gpt-5-codex"), PARALLEL_STREAM)
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=out))
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1", http_client=httpx.Client(transport=transport))
    with client.chat.completions.stream(model="gpt-5-codex", messages=[{"role": "user", "content": "hi"}]) as s:
        final = s.get_final_completion()
    message_ = final.choices[0].message
    assert message_.content == "Checking both."
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message_.tool_calls or []] == [
        ("call_a1", "LS", {"path": "src"}), ("call_b2", LONG_MCP, {"label": "bug"})]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.prompt_tokens == 2460


def test_module_exports_the_stream_translator() -> None:
    assert chat_to_responses.StreamTranslator is StreamTranslator
