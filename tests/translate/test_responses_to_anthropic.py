"""Responses client (Droid openai, Codex CLI, openai SDK) -> Claude upstream."""
from __future__ import annotations

import json
from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.formats.sse import SSEParser
from gateway.translate import responses_to_anthropic as r2a
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import Target
from tests.translate.chunked import replay

@pytest.fixture(autouse=True)
def _no_cache_marks(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the translation itself; the breakpoints added on top are pinned in test_cache_marks.py."""
    monkeypatch.setattr(r2a, "add_cache_marks", lambda body: body)


TARGET = Target("claude-sonnet-4-5-20250929", max_tokens=32000)
ADAPTIVE = Target("claude-opus-4-6", max_tokens=64000, adaptive_thinking=True)

SHELL_TOOL = {"type": "function", "name": "shell", "description": "Run a command", "strict": False,
              "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
APPLY_PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
                    "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}}
MCP_NAMESPACE = {"type": "namespace", "name": "mcp__docs__", "description": "Docs server", "tools": [
    {"type": "function", "name": "search", "description": "Search docs",
     "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}
CRM_NAMESPACE = {"type": "namespace", "name": "crm", "description": "CRM", "tools": [
    {"type": "function", "name": "search", "parameters": {"type": "object", "properties": {}}}]}


def dev(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


# Droid 0.225, provider openai (PROTOCOLS.md §7.4).
DROID_OPENAI = {
    "model": "claude-sonnet-4-5-20250929",
    "instructions": "You are Droid, an AI software engineering agent.",
    "input": [user("Run the tests")],
    "tools": [SHELL_TOOL],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "text": {"verbosity": "medium"},
    "store": False,
    "stream": True,
    "max_output_tokens": 64000,
}

# Codex CLI 0.169 (PROTOCOLS.md §7.4): no instructions, developer messages, namespaces,
# hosted web_search, freeform apply_patch, and OpenAI reasoning items from an earlier model.
CODEX = {
    "model": "claude-sonnet-4-5-20250929",
    "input": [
        dev("You are Codex, a coding agent."),
        dev("<permissions instructions>sandbox: workspace-write</permissions instructions>"),
        user("<environment_context><cwd>/repo</cwd></environment_context>"),
        user("Fix the failing test"),
        {"type": "reasoning", "id": "rs_0a1", "summary": [{"type": "summary_text", "text": "Look first."}],
         "content": None, "encrypted_content": "gAAAAABo1x-openai-blob"},
        {"type": "function_call", "id": "fc_0a1", "call_id": "call_Ab1", "name": "shell",
         "arguments": "{\"cmd\":\"pytest -q\"}"},
        {"type": "function_call", "id": "fc_0a2", "call_id": "call_Ab2", "name": "search", "namespace": "mcp__docs__",
         "arguments": "{\"q\":\"fixtures\"}"},
        {"type": "function_call_output", "call_id": "call_Ab1", "output": "1 failed"},
        {"type": "function_call_output", "call_id": "call_Ab2",
         "output": [{"type": "input_text", "text": "see conftest"}]},
        {"type": "custom_tool_call", "id": "ctc_0a3", "call_id": "call_Ab3", "name": "apply_patch",
         "input": "*** Begin Patch\n*** Update File: a.py\n-x\n+y\n*** End Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_Ab3", "output": "Done!"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "x"}},
    ],
    "tools": [SHELL_TOOL, APPLY_PATCH_TOOL, MCP_NAMESPACE, {"type": "web_search", "external_web_access": False}],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "high", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "3f0c2a5e-6d1b-4c8e-9a7f-2b1d0e4c5a6b",
    "client_metadata": {"originator": "codex_exec"},
}


# -- request ------------------------------------------------------------------------

def test_droid_openai_request_becomes_a_claude_request() -> None:
    assert r2a.request(DROID_OPENAI, TARGET) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 64000,
        "system": [text("You are Droid, an AI software engineering agent.")],
        "messages": [{"role": "user", "content": [text("Run the tests")]}],
        "stream": True,
        "tools": [{"name": "shell", "description": "Run a command", "input_schema": SHELL_TOOL["parameters"]}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 8192},
    }


def test_codex_request_flattens_tools_and_drops_foreign_reasoning() -> None:
    result = r2a.request(CODEX, TARGET)
    assert result["system"] == [text("You are Codex, a coding agent."),
                                text("<permissions instructions>sandbox: workspace-write</permissions instructions>")]
    assert [t["name"] for t in result["tools"]] == ["shell", "apply_patch", "mcp__docs__search"]
    assert result["tools"][1]["input_schema"] == {
        "type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
    assert "lark grammar" in result["tools"][1]["description"]
    assert result["messages"] == [
        {"role": "user", "content": [text("<environment_context><cwd>/repo</cwd></environment_context>"),
                                     text("Fix the failing test")]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_Ab1", "name": "shell", "input": {"cmd": "pytest -q"}},
            {"type": "tool_use", "id": "call_Ab2", "name": "mcp__docs__search", "input": {"q": "fixtures"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_Ab1", "content": "1 failed"},
            {"type": "tool_result", "tool_use_id": "call_Ab2", "content": [text("see conftest")]}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_Ab3", "name": "apply_patch",
                                           "input": {"input": CODEX["input"][9]["input"]}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_Ab3", "content": "Done!"}]},
    ]
    # The last tool turn has no Claude thinking to send back, so thinking is off for this request.
    assert "thinking" not in result
    for ignored in ("store", "include", "prompt_cache_key", "client_metadata", "metadata", "stream_options"):
        assert ignored not in result


def test_claude_reasoning_items_go_back_as_thinking_and_keep_thinking_on() -> None:
    body = {"input": [
        user("List files"),
        {"type": "reasoning", "id": "rs_01", "summary": [{"type": "summary_text", "text": "Use ls."}],
         "encrypted_content": "anthropic:EqQBCkgIARAB"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Listing.", "annotations": []}]},
        {"type": "function_call", "call_id": "toolu_01", "name": "shell", "arguments": "{\"cmd\":\"ls\"}"},
        {"type": "reasoning", "id": "rs_02", "summary": [], "encrypted_content": "anthropic-redacted:EmwKAhgB"},
        {"type": "function_call_output", "call_id": "toolu_01", "output": "a.txt"},
    ], "tools": [SHELL_TOOL], "reasoning": {"effort": "low"}}
    result = r2a.request(body, TARGET)
    assert result["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Use ls.", "signature": "EqQBCkgIARAB"},
        text("Listing."),
        {"type": "tool_use", "id": "toolu_01", "name": "shell", "input": {"cmd": "ls"}},
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
    ]
    assert result["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_string_input_images_pdf_and_array_tool_output() -> None:
    assert r2a.request({"input": "Hello"}, TARGET)["messages"] == [{"role": "user", "content": [text("Hello")]}]
    body = {"input": [
        {"role": "user", "content": [
            {"type": "input_text", "text": "What is in these?"},
            {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "auto"},
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}]},
        {"type": "function_call", "call_id": "c1", "name": "screenshot", "arguments": ""},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "screen:"}, {"type": "input_image", "image_url": "https://x.test/s.png"}]},
    ]}
    messages = r2a.request(body, TARGET)["messages"]
    assert messages[0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}]
    assert messages[1]["content"] == [{"type": "tool_use", "id": "c1", "name": "screenshot", "input": {}}]
    assert messages[2]["content"] == [{"type": "tool_result", "tool_use_id": "c1", "content": [
        text("screen:"), {"type": "image", "source": {"type": "url", "url": "https://x.test/s.png"}}]}]


@pytest.mark.parametrize("body", [
    {"input": "hi", "previous_response_id": "resp_123"},
    {"input": [{"type": "item_reference", "id": "msg_1"}, user("hi")]},
    {"input": [dev("only a developer message")]},
    {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]},
    {"input": [user("hi"), {"type": "function_call", "call_id": "c", "name": "shell", "arguments": "[1"}]},
])
def test_rejects_what_claude_cannot_do(body: dict[str, Any]) -> None:
    with pytest.raises(TranslationError):
        r2a.request(body, TARGET)


def test_previous_response_id_error_says_to_resend_the_input() -> None:
    with pytest.raises(TranslationError, match="resend the full input") as info:
        r2a.request({"input": "hi", "previous_response_id": "resp_1"}, TARGET)
    assert info.value.param == "previous_response_id"


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "function", "name": "shell"}, {"type": "tool", "name": "shell"}),
    ({"type": "custom", "name": "apply_patch"}, {"type": "tool", "name": "apply_patch"}),
    ({"type": "function", "name": "search", "namespace": "crm"}, {"type": "tool", "name": "crm__search"}),
    ({"type": "web_search"}, {"type": "auto"}),
    ("required", {"type": "any"}),
])
def test_tool_choice(choice: Any, expected: Any) -> None:
    body = {"input": "hi", "tools": [SHELL_TOOL, APPLY_PATCH_TOOL, CRM_NAMESPACE, MCP_NAMESPACE], "tool_choice": choice}
    assert r2a.request(body, TARGET)["tool_choice"] == expected


def test_same_inner_name_in_two_namespaces_stays_apart() -> None:
    body = {"input": "hi", "tools": [CRM_NAMESPACE, MCP_NAMESPACE]}
    assert [t["name"] for t in r2a.request(body, TARGET)["tools"]] == ["crm__search", "mcp__docs__search"]


def test_output_cap_structured_output_sampling_and_adaptive_effort() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    body = {"input": "hi", "max_output_tokens": 2000, "temperature": 0.5, "top_p": 0.9, "truncation": "auto",
            "text": {"format": {"type": "json_schema", "name": "r", "schema": schema, "strict": True}},
            "reasoning": {"effort": "minimal"}}
    result = r2a.request(body, ADAPTIVE)
    assert result["max_tokens"] == 2000
    assert result["output_config"] == {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}
    assert result["thinking"] == {"type": "adaptive"}
    assert "temperature" not in result and "top_p" not in result and "truncation" not in result


# -- response -------------------------------------------------------------------------

CODEX_TOOLS_BODY = {"tools": [SHELL_TOOL, APPLY_PATCH_TOOL, MCP_NAMESPACE], "reasoning": {"effort": "high", "summary": "auto"}}

CLAUDE_MESSAGE = {
    "id": "msg_01XY", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Search docs, then patch.", "signature": "EqQBsig"},
        {"type": "text", "text": "Searching."},
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_01S", "name": "mcp__docs__search", "input": {"q": "fixtures"}},
        {"type": "tool_use", "id": "toolu_01P", "name": "apply_patch", "input": {"input": "*** Begin Patch\n*** End Patch"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 412, "output_tokens": 97, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 2048},
}


def test_response_becomes_a_response_object_with_items_mapped_back() -> None:
    result = r2a.response(CLAUDE_MESSAGE, CODEX_TOOLS_BODY, "claude-sonnet-4-5")
    assert result["id"] == "resp_01XY" and result["object"] == "response" and result["status"] == "completed"
    assert result["output"] == [
        {"id": "rs_01XY_0", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Search docs, then patch."}],
         "encrypted_content": "anthropic:EqQBsig"},
        {"id": "msg_01XY_1", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Searching.", "annotations": []}]},
        {"id": "fc_01XY_3", "type": "function_call", "status": "completed", "call_id": "toolu_01S",
         "name": "search", "namespace": "mcp__docs__", "arguments": '{"q": "fixtures"}'},
        {"id": "ctc_01XY_4", "type": "custom_tool_call", "status": "completed", "call_id": "toolu_01P",
         "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
    ]
    assert result["usage"] == {"input_tokens": 2470, "input_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 10},
                               "output_tokens": 97, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2567}
    assert result["reasoning"] == {"effort": "high", "summary": "auto"}
    for key in ("created_at", "model", "error", "incomplete_details", "instructions", "max_output_tokens",
                "parallel_tool_calls", "previous_response_id", "store", "temperature", "text", "tool_choice",
                "tools", "top_p", "truncation", "metadata"):
        assert key in result


@pytest.mark.parametrize(("stop_reason", "status", "details"), [
    ("max_tokens", "incomplete", {"reason": "max_output_tokens"}),
    ("refusal", "incomplete", {"reason": "content_filter"}),
    ("end_turn", "completed", None),
])
def test_response_status_follows_the_stop_reason(stop_reason: str, status: str, details: Any) -> None:
    result = r2a.response({**CLAUDE_MESSAGE, "stop_reason": stop_reason}, {}, "m")
    assert (result["status"], result["incomplete_details"]) == (status, details)


def test_response_output_goes_back_as_the_same_claude_turn() -> None:
    output = r2a.response(CLAUDE_MESSAGE, CODEX_TOOLS_BODY, "m")["output"]
    body = {**CODEX_TOOLS_BODY, "input": [user("Fix it"), *output]}
    assistant = r2a.request(body, TARGET)["messages"][1]
    assert assistant["content"] == [c for c in CLAUDE_MESSAGE["content"] if c.get("text") != ""]


# -- stream ---------------------------------------------------------------------------

def sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def message_start(msg_id: str) -> dict[str, Any]:
    return {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 300}}}


def block(index: int, content_block: dict[str, Any], *deltas: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "content_block_start", "index": index, "content_block": content_block},
            *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": index}]


def ending(stop_reason: str, output_tokens: int = 80) -> list[dict[str, Any]]:
    return [{"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
             "usage": {"output_tokens": output_tokens}}, {"type": "message_stop"}]


PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+Hello \"world\"\n*** End Patch\n"
PATCH_JSON = json.dumps({"input": PATCH})

# Thinking, an empty text block, text, a namespaced call, a freeform call; pings in between.
FULL_STREAM = sse(
    message_start("msg_01XY"),
    *block(0, {"type": "thinking", "thinking": "", "signature": ""},
           {"type": "thinking_delta", "thinking": "Search, "}, {"type": "thinking_delta", "thinking": "then patch."},
           {"type": "signature_delta", "signature": "EqQBsig"}),
    {"type": "ping"},
    *block(1, {"type": "text", "text": ""}),
    *block(2, {"type": "text", "text": ""}, {"type": "text_delta", "text": "Sear"}, {"type": "text_delta", "text": "ching."}),
    *block(3, {"type": "tool_use", "id": "toolu_01S", "name": "mcp__docs__search", "input": {}},
           {"type": "input_json_delta", "partial_json": ""}, {"type": "input_json_delta", "partial_json": "{\"q\": \"fix"},
           {"type": "input_json_delta", "partial_json": "tures\"}"}),
    {"type": "ping"},
    *block(4, {"type": "tool_use", "id": "toolu_01P", "name": "apply_patch", "input": {}},
           *({"type": "input_json_delta", "partial_json": PATCH_JSON[i:i + 7]} for i in range(0, len(PATCH_JSON), 7))),
    *ending("tool_use"),
)


SDK_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def events(out: list[bytes], strict: bool = True) -> list[dict[str, Any]]:
    """Parse the client bytes back; with ``strict`` every event must validate against the openai SDK's types."""
    parsed = list(SSEParser().feed(b"".join(out)))
    assert len(parsed) == len(out)
    assert all(e.event == e.json()["type"] for e in parsed)
    result = [e.json() for e in parsed]
    assert [e["sequence_number"] for e in result] == list(range(len(result)))
    for event in result if strict else []:
        SDK_EVENT.validate_python(event)
    return result


def sdk_final_response(stream: list[dict[str, Any]]) -> Any:
    """Run the events through the state machine behind ``client.responses.stream()``,
    which checks item ids, output indexes and content indexes."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    completed = []
    for event in stream:
        completed += [e for e in state.handle_event(SDK_EVENT.validate_python(event)) if e.type == "response.completed"]
    assert len(completed) == 1
    return completed[0].response


@pytest.mark.parametrize("seed", range(4))
def test_stream_emits_the_full_responses_event_sequence(seed: int) -> None:
    translator = r2a.StreamTranslator(CODEX_TOOLS_BODY, "claude-sonnet-4-5")
    stream = events(replay(translator, FULL_STREAM, seed))
    assert [(e["type"], e.get("output_index")) for e in stream] == [
        ("response.created", None), ("response.in_progress", None),
        ("response.output_item.added", 0), ("response.reasoning_summary_part.added", 0),
        ("response.reasoning_summary_text.delta", 0), ("response.reasoning_summary_text.delta", 0),
        ("response.reasoning_summary_text.done", 0), ("response.reasoning_summary_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1), ("response.content_part.added", 1),
        ("response.output_text.delta", 1), ("response.output_text.delta", 1),
        ("response.output_text.done", 1), ("response.content_part.done", 1), ("response.output_item.done", 1),
        ("response.output_item.added", 2), ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.delta", 2), ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.output_item.added", 3), ("response.custom_tool_call_input.delta", 3),
        ("response.custom_tool_call_input.done", 3), ("response.output_item.done", 3),
        ("response.completed", None),
    ]
    done_items = [e["item"] for e in stream if e["type"] == "response.output_item.done"]
    completed = stream[-1]["response"]
    assert completed["output"] == done_items and completed["id"] == "resp_01XY"
    assert completed["usage"]["input_tokens"] == 312 and completed["usage"]["output_tokens"] == 80
    assert done_items[0]["encrypted_content"] == "anthropic:EqQBsig"
    assert done_items[2] == {"id": "fc_01XY_3", "type": "function_call", "status": "completed", "call_id": "toolu_01S",
                             "name": "search", "namespace": "mcp__docs__", "arguments": '{"q": "fixtures"}'}
    assert done_items[3]["type"] == "custom_tool_call" and done_items[3]["input"] == PATCH
    assert translator.done


def test_stream_item_ids_are_consistent_and_the_sdk_accepts_it() -> None:
    stream = events(replay(r2a.StreamTranslator(CODEX_TOOLS_BODY, "m"), FULL_STREAM, seed=9))
    ids_by_index = {e["output_index"]: e["item"]["id"] for e in stream if e["type"] == "response.output_item.added"}
    for event in stream:
        if "item_id" in event:
            assert event["item_id"] == ids_by_index[event["output_index"]]
        if event["type"] == "response.output_item.done":
            assert event["item"]["id"] == ids_by_index[event["output_index"]]
    arguments = "".join(e["delta"] for e in stream if e["type"] == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"q": "fixtures"}
    final = sdk_final_response(stream)
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call", "custom_tool_call"]
    assert final.output_text == "Searching."


def test_stream_output_round_trips_into_the_next_request() -> None:
    stream = events(replay(r2a.StreamTranslator(CODEX_TOOLS_BODY, "m"), FULL_STREAM, seed=1))
    items = [e["item"] for e in stream if e["type"] == "response.output_item.done"]
    outputs = [{"type": "function_call_output", "call_id": "toolu_01S", "output": "found"},
               {"type": "custom_tool_call_output", "call_id": "toolu_01P", "output": "Done!"}]
    body = {**CODEX_TOOLS_BODY, "input": [user("Fix it"), *items, *outputs]}
    result = r2a.request(body, TARGET)
    assert result["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Search, then patch.", "signature": "EqQBsig"},
        text("Searching."),
        {"type": "tool_use", "id": "toolu_01S", "name": "mcp__docs__search", "input": {"q": "fixtures"}},
        {"type": "tool_use", "id": "toolu_01P", "name": "apply_patch", "input": {"input": PATCH}},
    ]
    assert result["thinking"]["type"] == "enabled"


def test_stream_max_tokens_ends_with_response_incomplete() -> None:
    raw = sse(message_start("msg_02"), *block(0, {"type": "text", "text": ""}, {"type": "text_delta", "text": "Long"}),
              *ending("max_tokens"))
    stream = events(replay(r2a.StreamTranslator({}, "m"), raw, seed=2))
    assert stream[-1]["type"] == "response.incomplete"
    assert stream[-1]["response"]["status"] == "incomplete"
    assert stream[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_stream_tool_call_without_input_sends_empty_object_arguments() -> None:
    raw = sse(message_start("msg_03"), *block(0, {"type": "tool_use", "id": "toolu_9", "name": "shell", "input": {}}),
              *ending("tool_use"))
    stream = events(replay(r2a.StreamTranslator({"tools": [SHELL_TOOL]}, "m"), raw, seed=4))
    deltas = [e["delta"] for e in stream if e["type"] == "response.function_call_arguments.delta"]
    assert deltas == ["{}"] and stream[-1]["response"]["output"][0]["arguments"] == "{}"


def test_stream_upstream_error_gives_error_then_response_failed() -> None:
    raw = sse(message_start("msg_04"), {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
              {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    translator = r2a.StreamTranslator({}, "m")
    stream = events(replay(translator, raw, seed=6))
    assert stream[-2] == {"type": "error", "sequence_number": stream[-2]["sequence_number"],
                          "code": "server_error", "message": "Overloaded", "param": None}
    assert stream[-1]["type"] == "response.failed"
    assert stream[-1]["response"]["status"] == "failed"
    assert stream[-1]["response"]["error"] == {"code": "server_error", "message": "Overloaded"}
    assert translator.done and translator.finish() == [] and translator.fail("api_error", "x") == []


@pytest.mark.parametrize(("error_type", "message", "code"), [
    ("rate_limit_error", "This request would exceed your account's rate limit.", "rate_limit_exceeded"),
    ("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", "context_length_exceeded"),
    ("api_error", "upstream connection lost", "server_error"),
])
def test_gateway_fail_before_any_event_still_makes_a_valid_stream(error_type: str, message: str, code: str) -> None:
    # Not strict: the SDK's literal list lacks context_length_exceeded, which Codex reads (§3.5).
    stream = events(r2a.StreamTranslator({}, "m").fail(error_type, message), strict=False)
    assert [e["type"] for e in stream] == ["response.created", "response.in_progress", "error", "response.failed"]
    assert stream[-1]["response"]["error"]["code"] == code


def test_stream_cut_before_message_delta_fails_but_after_it_completes() -> None:
    cut = FULL_STREAM.split("event: message_delta")[0]
    assert events(replay(r2a.StreamTranslator({}, "m"), cut, seed=8))[-1]["type"] == "response.failed"
    cut = FULL_STREAM.split("event: message_stop")[0]
    assert events(replay(r2a.StreamTranslator({}, "m"), cut, seed=8))[-1]["type"] == "response.completed"


@pytest.mark.parametrize("client_body", [DROID_OPENAI, CODEX], ids=["droid-openai", "codex"])
def test_stream_echoes_real_client_settings_in_sdk_valid_responses(client_body: dict[str, Any]) -> None:
    raw = sse(message_start("msg_05"), *block(0, {"type": "text", "text": ""}, {"type": "text_delta", "text": "All green."}),
              *ending("end_turn", 5))
    final = sdk_final_response(events(replay(r2a.StreamTranslator(client_body, "claude-sonnet-4-5"), raw, seed=7)))
    assert final.output_text == "All green." and final.status == "completed"
    assert final.instructions == client_body.get("instructions")
    assert len(final.tools) == len(client_body["tools"]) and final.store is False
