"""Chat Completions client -> Claude upstream: request, response and stream translation."""
from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from gateway.formats.sse import SSEParser
from gateway.translate import chat_to_anthropic as c2a
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import Target
from tests.translate.chunked import replay

@pytest.fixture(autouse=True)
def _no_cache_marks(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the translation itself; the breakpoints added on top are pinned in test_cache_marks.py."""
    monkeypatch.setattr(c2a, "add_cache_marks", lambda body: body)


TARGET = Target("claude-sonnet-4-5-20250929", max_tokens=32000)
ADAPTIVE = Target("claude-opus-4-6", max_tokens=64000, adaptive_thinking=True)

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}

# Droid 0.225, provider generic-chat-completion-api (PROTOCOLS.md §7.4).
DROID_GENERIC = {
    "model": "claude-sonnet-4-5-20250929",
    "messages": [
        {"role": "system", "content": "You are Droid, an AI software engineering agent."},
        {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]},
    ],
    "stream": True,
    "stream_options": {"include_usage": True},
    "temperature": 0.2,
    "max_tokens": 32000,
    "tools": [WEATHER_TOOL],
}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


# -- request ------------------------------------------------------------------------

def test_droid_generic_request_becomes_a_claude_request() -> None:
    assert c2a.request(DROID_GENERIC, TARGET) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "system": [text("You are Droid, an AI software engineering agent.")],
        "messages": [{"role": "user", "content": [text("What's the weather in Paris?")]}],
        "stream": True,
        "temperature": 0.2,
        "tools": [{"name": "get_weather", "description": "Current weather",
                   "input_schema": WEATHER_TOOL["function"]["parameters"]}],
    }


def test_system_and_developer_messages_anywhere_become_system_blocks_in_order() -> None:
    body = {"messages": [
        {"role": "system", "content": "Be terse."},
        user("Hi"),
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}, {"type": "text", "text": " "}]},
        {"role": "assistant", "content": "Salut"},
        {"role": "system", "content": ""},
        user("Again"),
    ]}
    result = c2a.request(body, TARGET)
    assert result["system"] == [text("Be terse."), text("Answer in French.")]
    assert [m["role"] for m in result["messages"]] == ["user", "assistant", "user"]


def test_images_from_data_and_https_urls() -> None:
    body = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
    ]}]}
    assert c2a.request(body, TARGET)["messages"][0]["content"] == [
        text("Compare"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
    ]


def test_rejects_unsupported_image_types_and_audio() -> None:
    with pytest.raises(TranslationError):
        c2a.request({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}]}, TARGET)
    with pytest.raises(TranslationError):
        c2a.request({"messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}, TARGET)


def test_parallel_tool_loop_puts_results_first_in_call_order_with_following_text() -> None:
    body = {"messages": [
        user("Weather and time in Paris?"),
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            call("call_a1", "get_weather", '{"city":"Paris"}'), call("call_b2", "get_time", "")]},
        {"role": "tool", "tool_call_id": "call_b2", "content": "14:00"},
        {"role": "tool", "tool_call_id": "call_a1", "content": [{"type": "text", "text": "18C, cloudy"}]},
        user("Also tomorrow?"),
    ], "tools": [WEATHER_TOOL, TIME_TOOL]}
    messages = c2a.request(body, TARGET)["messages"]
    assert messages[1] == {"role": "assistant", "content": [
        text("Checking both."),
        {"type": "tool_use", "id": "call_a1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b2", "name": "get_time", "input": {}},
    ]}
    assert messages[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_a1", "content": [text("18C, cloudy")]},
        {"type": "tool_result", "tool_use_id": "call_b2", "content": "14:00"},
        text("Also tomorrow?"),
    ]}
    assert len(messages) == 3


def test_orphan_and_duplicate_results_are_dropped_and_missing_ones_filled() -> None:
    body = {"messages": [
        user("go"),
        {"role": "tool", "tool_call_id": "call_zz", "content": "orphan before any call"},
        {"role": "assistant", "content": None, "tool_calls": [
            call("call_1", "get_time", "{}"), call("call_2", "get_time", "{}")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "first"},
        {"role": "tool", "tool_call_id": "call_1", "content": "duplicate"},
        {"role": "tool", "tool_call_id": "call_9", "content": "orphan"},
    ]}
    messages = c2a.request(body, TARGET)["messages"]
    assert messages[0] == {"role": "user", "content": [text("go")]}
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "first"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "(no result)", "is_error": True},
    ]


def test_trailing_tool_calls_without_results_get_placeholder_results() -> None:
    body = {"messages": [user("go"), {"role": "assistant", "tool_calls": [call("call_1", "get_time", "{}")]}]}
    assert c2a.request(body, TARGET)["messages"][-1] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "(no result)", "is_error": True}]}


def test_tool_ids_are_sanitized_and_reused_ids_renamed() -> None:
    body = {"messages": [
        user("go"),
        {"role": "assistant", "tool_calls": [call("call:1/a", "get_time", "{}")]},
        {"role": "tool", "tool_call_id": "call:1/a", "content": "one"},
        {"role": "assistant", "tool_calls": [call("call:1/a", "get_time", "{}")]},
        {"role": "tool", "tool_call_id": "call:1/a", "content": "two"},
    ]}
    messages = c2a.request(body, TARGET)["messages"]
    assert messages[1]["content"][0]["id"] == "call_1_a"
    assert messages[2]["content"][0]["tool_use_id"] == "call_1_a"
    assert messages[3]["content"][0]["id"] == "call_1_a_2"
    assert messages[4]["content"] == [{"type": "tool_result", "tool_use_id": "call_1_a_2", "content": "two"}]


def test_invalid_tool_arguments_are_rejected() -> None:
    body = {"messages": [user("go"), {"role": "assistant", "tool_calls": [call("c1", "get_time", "{not json")]}]}
    with pytest.raises(TranslationError):
        c2a.request(body, TARGET)


def test_same_role_turns_merge_and_empty_text_is_dropped() -> None:
    body = {"messages": [
        user("one"), user("   "), user("two"),
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": "ok"},
        {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
        user("three"),
    ]}
    assert c2a.request(body, TARGET)["messages"] == [
        {"role": "user", "content": [text("one"), text("two")]},
        {"role": "assistant", "content": [text("ok"), text("done")]},
        {"role": "user", "content": [text("three")]},
    ]


@pytest.mark.parametrize("body", [
    {"messages": [user("hi")], "n": 2},
    {"messages": [{"role": "system", "content": "Only a system prompt"}]},
    {"messages": [user("hi")], "reasoning_effort": "extreme"},
    {"messages": [user("hi")], "max_completion_tokens": "lots"},
])
def test_rejects_what_claude_cannot_do(body: dict[str, Any]) -> None:
    with pytest.raises(TranslationError):
        c2a.request(body, TARGET)


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, {"type": "auto"}),
    ("none", False, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    (None, None, None),
])
def test_tool_choice_and_parallel_tool_calls(choice: Any, parallel: Any, expected: Any) -> None:
    body: dict[str, Any] = {"messages": [user("hi")], "tools": [WEATHER_TOOL]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert c2a.request(body, TARGET).get("tool_choice") == expected


def test_tool_choice_without_tools_is_dropped_and_long_names_are_mapped_back() -> None:
    assert "tool_choice" not in c2a.request({"messages": [user("hi")], "tool_choice": "required"}, TARGET)
    long_name = "mcp__" + "server" * 12 + "__read.file"
    tool = {"type": "function", "function": {"name": long_name, "parameters": {"type": "object", "properties": {}}}}
    body = {"messages": [user("hi")], "tools": [tool]}
    upstream_name = c2a.request(body, TARGET)["tools"][0]["name"]
    assert upstream_name == "mcp__read_file"
    msg = {"id": "msg_1", "content": [{"type": "tool_use", "id": "toolu_1", "name": upstream_name, "input": {}}],
           "stop_reason": "tool_use", "usage": {}}
    assert c2a.response(msg, body, "m")["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == long_name


def test_sampling_stop_and_dropped_fields() -> None:
    body = {"messages": [user("hi")], "max_completion_tokens": 900, "max_tokens": 5, "stop": "END",
            "temperature": 1.7, "top_p": 0.5, "seed": 7, "logprobs": True, "presence_penalty": 1,
            "frequency_penalty": 1, "stream_options": {"include_usage": True}, "user": "alice@example.com"}
    result = c2a.request(body, TARGET)
    assert result["max_tokens"] == 900
    assert result["stop_sequences"] == ["END"]
    assert result["temperature"] == 1.0 and "top_p" not in result
    assert result["metadata"] == {"user_id": hashlib.sha256(b"alice@example.com").hexdigest()}
    assert set(result) == {"model", "max_tokens", "messages", "stop_sequences", "temperature", "metadata"}


def test_reasoning_effort_gives_a_manual_budget_and_raises_max_tokens() -> None:
    body = {"messages": [user("hi")], "reasoning_effort": "medium", "max_completion_tokens": 4000,
            "temperature": 0.3, "top_p": 0.9, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    result = c2a.request(body, TARGET)
    assert result["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert result["max_tokens"] == 8192 + 1024
    assert "temperature" not in result and "top_p" not in result
    assert result["tool_choice"] == {"type": "auto"}


def test_thinking_budget_never_pushes_max_tokens_past_the_model_cap() -> None:
    body = {"messages": [user("hi")], "reasoning_effort": "xhigh"}
    result = c2a.request(body, Target("claude-opus-4-1", max_tokens=32000))
    assert result["max_tokens"] == 32000
    assert result["thinking"] == {"type": "enabled", "budget_tokens": 32000 - 1024}


def test_adaptive_models_get_adaptive_thinking_and_effort() -> None:
    body = {"messages": [user("hi")], "reasoning_effort": "xhigh", "temperature": 1}
    result = c2a.request(body, ADAPTIVE)
    assert result["thinking"] == {"type": "adaptive"}
    assert result["output_config"] == {"effort": "max"}
    assert result["temperature"] == 1.0
    assert "thinking" not in c2a.request({**body, "reasoning_effort": "none"}, ADAPTIVE)


def test_thinking_is_turned_off_when_the_last_assistant_tool_turn_has_no_thinking() -> None:
    body = {"messages": [
        user("Weather?"),
        {"role": "assistant", "content": None, "tool_calls": [call("call_1", "get_weather", '{"city":"Paris"}')]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ], "reasoning_effort": "high", "tools": [WEATHER_TOOL]}
    assert "thinking" not in c2a.request(body, TARGET)
    assert "thinking" not in c2a.request(body, ADAPTIVE) and "output_config" not in c2a.request(body, ADAPTIVE)
    body["messages"].append({"role": "assistant", "content": "It is 18C."})
    body["messages"].append(user("Thanks, and London?"))
    assert c2a.request(body, TARGET)["thinking"]["type"] == "enabled"


def test_response_format_json_schema_and_json_object() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = {"messages": [user("hi")], "response_format": {
        "type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}}}
    assert c2a.request(body, TARGET)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    body = {"messages": [{"role": "system", "content": "S"}, user("hi")], "response_format": {"type": "json_object"}}
    system = c2a.request(body, TARGET)["system"]
    assert system[0] == text("S") and "JSON" in system[1]["text"]


# -- response -------------------------------------------------------------------------

CLAUDE_MESSAGE = {
    "id": "msg_01XY", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Need the weather tool.", "signature": "EqQBCkgIARAB"},
        {"type": "text", "text": "Calling the tool."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 412, "output_tokens": 97, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048},
}


def test_response_becomes_a_chat_completion() -> None:
    result = c2a.response(CLAUDE_MESSAGE, DROID_GENERIC, "claude-sonnet-4-5")
    assert isinstance(result.pop("created"), int)
    assert result == {
        "id": "chatcmpl-msg_01XY", "object": "chat.completion", "model": "claude-sonnet-4-5",
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Calling the tool.", "refusal": None,
            "reasoning_content": "Need the weather tool.",
            "tool_calls": [{"id": "toolu_01A", "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}}],
        "usage": {"prompt_tokens": 2460, "completion_tokens": 97, "total_tokens": 2557,
                  "prompt_tokens_details": {"cached_tokens": 2048}, "completion_tokens_details": {"reasoning_tokens": 0}},
    }


def test_response_content_is_null_with_only_tool_calls_and_length_on_max_tokens() -> None:
    only_call = {**CLAUDE_MESSAGE, "content": CLAUDE_MESSAGE["content"][2:]}
    assert c2a.response(only_call, {}, "m")["choices"][0]["message"]["content"] is None
    truncated = {**CLAUDE_MESSAGE, "content": [], "stop_reason": "max_tokens"}
    choice = c2a.response(truncated, {}, "m")["choices"][0]
    assert choice["message"]["content"] == "" and choice["finish_reason"] == "length"


# -- stream ---------------------------------------------------------------------------

# PROTOCOLS.md §1.8: text, then one tool call, with a ping in between.
TEXT_THEN_TOOL = """event: message_start
data: {"type":"message_start","message":{"id":"msg_01XY","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":412,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type":"ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Pa"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":97}}

event: message_stop
data: {"type":"message_stop"}

"""

# Interleaved thinking, then two parallel tool calls (the second with no input).
THINKING_PARALLEL = """event: message_start
data: {"type":"message_start","message":{"id":"msg_02AB","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":2,"cache_creation_input_tokens":100,"cache_read_input_tokens":0}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two lookups, "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"in parallel."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkgIARABGAIiQ"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01W","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"Zürich\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T","name":"get_time","input":{}}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":30,"cache_creation_input_tokens":100,"cache_read_input_tokens":0,"output_tokens":120}}

event: message_stop
data: {"type":"message_stop"}

"""


def payloads(out: list[bytes]) -> list[Any]:
    """Parse the client bytes back; every chunk must validate as the openai SDK's ChatCompletionChunk."""
    raw = b"".join(out)
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in out)
    result = ["[DONE]" if e.data == "[DONE]" else json.loads(e.data) for e in SSEParser().feed(raw)]
    for chunk in result:
        if isinstance(chunk, dict) and "choices" in chunk:
            ChatCompletionChunk.model_validate(chunk)
    return result


def deltas(chunks: list[Any]) -> list[Any]:
    return [c if c == "[DONE]" else (c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) if c["choices"]
            else ("usage", c["usage"]) for c in chunks]


@pytest.mark.parametrize("seed", range(5))
def test_stream_text_then_tool_call_with_usage(seed: int) -> None:
    translator = c2a.StreamTranslator(DROID_GENERIC, "claude-sonnet-4-5")
    chunks = payloads(replay(translator, TEXT_THEN_TOOL, seed))
    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Checking"}, None),
        ({"tool_calls": [{"index": 0, "id": "toolu_01A", "type": "function",
                          "function": {"name": "get_weather", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}, None),
        ({}, "tool_calls"),
        ("usage", {"prompt_tokens": 2460, "completion_tokens": 97, "total_tokens": 2557,
                   "prompt_tokens_details": {"cached_tokens": 2048}, "completion_tokens_details": {"reasoning_tokens": 0}}),
        "[DONE]",
    ]
    objects = chunks[:-1]
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in objects} == {
        ("chatcmpl-msg_01XY", objects[0]["created"], "claude-sonnet-4-5", "chat.completion.chunk")}
    assert all(c["usage"] is None for c in objects[:-1])
    assert translator.done and translator.usage.output == 97


def test_stream_parallel_calls_and_thinking_parse_as_an_openai_client_would() -> None:
    translator = c2a.StreamTranslator({"tools": [WEATHER_TOOL, TIME_TOOL]}, "claude-sonnet-4-5")
    chunks = payloads(replay(translator, THINKING_PARALLEL, seed=11))
    assert chunks[-1] == "[DONE]"
    assert all("usage" not in c for c in chunks[:-1])
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks[:-1])
    assert reasoning == "Two lookups, in parallel."
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    choice = state.get_final_completion().choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [(t.id, t.function.name, json.loads(t.function.arguments)) for t in choice.message.tool_calls or []]
    assert calls == [("toolu_01W", "get_weather", {"city": "Zürich"}), ("toolu_01T", "get_time", {})]


def test_stream_error_event_ends_with_an_error_chunk_and_done() -> None:
    raw = TEXT_THEN_TOOL.split("event: content_block_stop")[0] + (
        'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n')
    translator = c2a.StreamTranslator({}, "m")
    chunks = payloads(replay(translator, raw, seed=3))
    assert chunks[-2:] == [{"error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": "overloaded_error"}},
                           "[DONE]"]
    assert translator.done
    assert translator.feed(SSEParser().feed(b'event: message_stop\ndata: {"type":"message_stop"}\n\n').__next__()) == []
    assert translator.fail("api_error", "late") == [] and translator.finish() == []


def test_stream_cut_before_message_delta_fails_at_eof() -> None:
    translator = c2a.StreamTranslator({}, "m")
    chunks = payloads(replay(translator, TEXT_THEN_TOOL.split("event: message_delta")[0], seed=5))
    assert chunks[-2]["error"]["type"] == "api_error" and chunks[-1] == "[DONE]"


def test_stream_cut_after_message_delta_still_completes() -> None:
    translator = c2a.StreamTranslator(DROID_GENERIC, "m")
    chunks = payloads(replay(translator, TEXT_THEN_TOOL.split("event: message_stop")[0], seed=5))
    assert chunks[-2]["choices"] == [] and chunks[-1] == "[DONE]"


def test_gateway_fail_produces_the_chat_error_ending() -> None:
    translator = c2a.StreamTranslator({}, "m")
    assert payloads(translator.fail("api_error", "upstream connection lost")) == [
        {"error": {"message": "upstream connection lost", "type": "api_error", "param": None, "code": "api_error"}}, "[DONE]"]
    assert translator.done


# -- conversation invariants ------------------------------------------------------------

def random_conversation(rng: random.Random) -> list[dict[str, Any]]:
    """Messy Chat histories: blank text, stray system turns, orphan, duplicate and missing results."""
    ids = ["call_1", "call_2", "call_3", "call:4"]
    makers = [
        lambda: user(rng.choice(["hi", "", "  ", "more"])),
        lambda: {"role": "system", "content": rng.choice(["S", ""])},
        lambda: {"role": "assistant", "content": rng.choice([None, "", "ok"]),
                 "tool_calls": [call(rng.choice(ids), "get_time", "{}") for _ in range(rng.randint(0, 3))]},
        lambda: {"role": "tool", "tool_call_id": rng.choice(ids), "content": rng.choice(["r", ""])},
    ]
    return [rng.choice(makers)() for _ in range(rng.randint(0, 12))]


@pytest.mark.parametrize("seed", range(100))
def test_any_conversation_becomes_a_valid_claude_conversation(seed: int) -> None:
    messages = random_conversation(random.Random(seed))
    try:
        result = c2a.request({"messages": messages}, TARGET)["messages"]
    except TranslationError:
        assert not any(m["role"] == "user" and m["content"].strip() for m in messages)
        return
    roles = [m["role"] for m in result]
    assert all(a != b for a, b in zip(roles, roles[1:]))
    seen: set[str] = set()
    for i, message in enumerate(result):
        assert message["content"]
        assert all(b["type"] != "text" or b["text"].strip() for b in message["content"])
        ids = [b["id"] for b in message["content"] if b["type"] == "tool_use"]
        assert not seen & set(ids) and len(set(ids)) == len(ids)
        seen |= set(ids)
        if ids:
            following = result[i + 1]["content"]
            assert [b.get("tool_use_id") for b in following[:len(ids)]] == ids
        if message["role"] == "user":
            kinds = [b["type"] for b in message["content"]]
            assert kinds == sorted(kinds, key=lambda k: k != "tool_result")
            expected = [b["id"] for b in result[i - 1]["content"] if b["type"] == "tool_use"] if i else []
            assert [b["tool_use_id"] for b in message["content"] if b["type"] == "tool_result"] == expected


# -- freeform (custom) tools ------------------------------------------------------------

APPLY_PATCH = {"type": "custom", "custom": {"name": "apply_patch", "description": "Edit files with a patch.",
                                            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi \"there\"\n*** End Patch"


def test_custom_tools_become_one_string_tools_and_their_history_round_trips() -> None:
    body = {"model": "claude-sonnet-4-5", "tools": [APPLY_PATCH, WEATHER_TOOL],
            "tool_choice": {"type": "custom", "custom": {"name": "apply_patch"}},
            "messages": [user("Add a.txt"),
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "call_p", "type": "custom", "custom": {"name": "apply_patch", "input": PATCH}}]},
                         {"role": "tool", "tool_call_id": "call_p", "content": "Done"}]}
    out = c2a.request(body, TARGET)
    patch_tool, weather = out["tools"]
    assert patch_tool["name"] == "apply_patch" and patch_tool["input_schema"] == {
        "type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
    assert patch_tool["description"].startswith("Edit files with a patch.") and "lark grammar" in patch_tool["description"]
    assert weather["name"] == "get_weather"
    assert out["tool_choice"] == {"type": "tool", "name": "apply_patch"}
    assistant, result = out["messages"][1:]
    assert assistant["content"] == [{"type": "tool_use", "id": "call_p", "name": "apply_patch", "input": {"input": PATCH}}]
    assert result["content"][0]["type"] == "tool_result" and result["content"][0]["tool_use_id"] == "call_p"


def test_a_custom_tool_call_comes_back_with_its_bare_input() -> None:
    msg = {**CLAUDE_MESSAGE, "content": [{"type": "tool_use", "id": "toolu_01P", "name": "apply_patch", "input": {"input": PATCH}}]}
    [call_out] = c2a.response(msg, {"tools": [APPLY_PATCH]}, "m")["choices"][0]["message"]["tool_calls"]
    assert call_out == {"id": "toolu_01P", "type": "custom", "custom": {"name": "apply_patch", "input": PATCH}}


@pytest.mark.parametrize("seed", range(3))
def test_a_streamed_custom_tool_call_sends_its_input_as_one_string(seed: int) -> None:
    encoded = json.dumps({"input": PATCH})
    fragments = [encoded[:9], encoded[9:30], encoded[30:]]
    deltas_sse = "".join(
        'event: content_block_delta\ndata: ' + json.dumps({"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": f}}) + "\n\n" for f in fragments)
    raw = TEXT_THEN_TOOL.replace('"name":"get_weather"', '"name":"apply_patch"')
    head, tail = raw.split('event: content_block_delta\ndata: {"type":"content_block_delta","index":1', 1)
    raw = head + deltas_sse + "event: content_block_stop" + tail.split("event: content_block_stop", 1)[1]
    out = replay(c2a.StreamTranslator({"tools": [APPLY_PATCH]}, "m"), raw, seed)
    events = [e.data for e in SSEParser().feed(b"".join(out))]
    chunks = [json.loads(d) for d in events[:-1]]
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert calls == [{"index": 0, "id": "toolu_01A", "type": "custom", "custom": {"name": "apply_patch", "input": ""}},
                     {"index": 0, "custom": {"input": PATCH}}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" and events[-1] == "[DONE]"
