"""codex_body.prepare(): the Codex backend's body rules (PROTOCOLS.md §5.6)."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gateway.translate.errors import TranslationError
from gateway.translate.tool_names import shorten_call_id, shorten_tool_names, tool_name_map
from gateway.upstream import codex_body
from gateway.upstream.codex_body import prepare

# Shaped like a Codex CLI 0.169 follow-up turn (§7.4): no instructions,
# developer messages, client_metadata, reasoning resent with its blob, ids on
# resent items, a custom apply_patch call, namespace and hosted tools.
CODEX_CLI_BODY: dict[str, Any] = {
    "model": "gpt-5.3-codex",
    "input": [
        {"type": "message", "role": "developer",
         "content": [{"type": "input_text", "text": "You are Codex, a coding agent."}]},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>…"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the failing test"}]},
        {"type": "reasoning", "id": "rs_0a1", "summary": [{"type": "summary_text", "text": "Looking at tests"}],
         "encrypted_content": "gAAAAABo-enc-1"},
        {"type": "function_call", "id": "fc_0a2", "call_id": "call_Xy1", "name": "shell",
         "arguments": "{\"command\":[\"pytest\",\"-x\"]}"},
        {"type": "function_call_output", "call_id": "call_Xy1", "output": "1 failed"},
        {"type": "custom_tool_call", "id": "ctc_0a3", "call_id": "call_Xy2", "name": "apply_patch",
         "input": "*** Begin Patch\n*** End Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_Xy2", "output": "Done!"},
        {"type": "message", "id": "msg_0a4", "role": "assistant",
         "content": [{"type": "output_text", "text": "Fixed."}]},
    ],
    "tools": [
        {"type": "function", "name": "shell", "description": "Runs a shell command",
         "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}},
         "strict": False},
        {"type": "custom", "name": "apply_patch", "description": "Edit files",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: ..."}},
        {"type": "namespace", "name": "mcp", "tools": [{"type": "function", "name": "read", "parameters": {}}]},
        {"type": "web_search", "external_web_access": False},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "high", "summary": "detailed"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "client_metadata": {"x-codex-turn": "2"},
    "text": {"verbosity": "low"},
}


def test_codex_cli_body_keeps_its_own_choices_and_loses_the_rest() -> None:
    out = prepare(CODEX_CLI_BODY)
    assert out["instructions"] == ""
    assert out["stream"] is True and out["store"] is False
    assert out["parallel_tool_calls"] is False
    assert out["reasoning"] == {"effort": "high", "summary": "detailed"}
    assert out["include"] == ["reasoning.encrypted_content"]
    assert out["tools"] == CODEX_CLI_BODY["tools"]
    assert out["text"] == {"verbosity": "low"} and out["prompt_cache_key"] == CODEX_CLI_BODY["prompt_cache_key"]
    assert "client_metadata" not in out


def test_strips_ids_from_input_items_except_reasoning() -> None:
    out = prepare(CODEX_CLI_BODY)
    assert [item.get("id") for item in out["input"]] == [None] * 3 + ["rs_0a1"] + [None] * 5
    assert out["input"][4] == {"type": "function_call", "call_id": "call_Xy1", "name": "shell",
                               "arguments": "{\"command\":[\"pytest\",\"-x\"]}"}


def test_never_mutates_the_client_body() -> None:
    before = copy.deepcopy(CODEX_CLI_BODY)
    prepare(CODEX_CLI_BODY, hoist_instructions=True)
    assert CODEX_CLI_BODY == before


def test_string_input_becomes_one_user_message_and_defaults_are_filled() -> None:
    out = prepare({"model": "gpt-5-codex", "input": "List files"})
    assert out == {
        "model": "gpt-5-codex",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files"}]}],
        "instructions": "", "stream": True, "store": False, "include": ["reasoning.encrypted_content"],
        "parallel_tool_calls": True, "reasoning": {"effort": "medium", "summary": "auto"},
    }


def test_droid_openai_body_keeps_instructions_and_adds_the_include() -> None:
    body = {"model": "gpt-5-codex", "instructions": "You are Droid.", "stream": True, "store": False,
            "reasoning": {"effort": "low"}, "text": {"verbosity": "medium"}, "max_output_tokens": 128000,
            "include": ["message.output_text.logprobs"],
            "input": [{"role": "user", "content": "hello"}]}
    out = prepare(body)
    assert out["instructions"] == "You are Droid."
    assert out["reasoning"] == {"effort": "low", "summary": "auto"}
    assert out["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    assert "max_output_tokens" not in out
    assert out["input"] == [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("field", codex_body.FORBIDDEN_FIELDS)
def test_removes_fields_codex_rejects(field: str) -> None:
    out = prepare({"model": "m", "input": [], field: 1})
    assert field not in out


def test_a_chat_style_response_format_becomes_text_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    out = prepare({"model": "m", "input": [], "response_format": fmt, "text": {"verbosity": "low"}})
    assert "response_format" not in out
    assert out["text"] == {"verbosity": "low", "format": {"type": "json_schema", "name": "answer", "schema": schema,
                                                          "strict": True}}
    # A text.format the client set itself wins.
    own = {"format": {"type": "text"}}
    assert prepare({"model": "m", "input": [], "response_format": fmt, "text": own})["text"] == own


def test_previous_response_id_is_refused() -> None:
    with pytest.raises(TranslationError) as exc:
        prepare({"model": "m", "input": [], "previous_response_id": "resp_123"})
    assert exc.value.status == 400 and exc.value.param == "previous_response_id"


def test_null_previous_response_id_is_just_removed() -> None:
    assert "previous_response_id" not in prepare({"model": "m", "previous_response_id": None})


@pytest.mark.parametrize(("tier", "kept"), [("priority", True), ("flex", False), ("auto", False), ("default", False)])
def test_service_tier_survives_only_as_priority(tier: str, kept: bool) -> None:
    assert ("service_tier" in prepare({"model": "m", "service_tier": tier})) is kept


def test_system_role_items_become_developer() -> None:
    out = prepare({"model": "m", "input": [{"type": "message", "role": "system", "content": "Be terse."},
                                           {"role": "user", "content": "hi"}]})
    assert out["input"][0] == {"type": "message", "role": "developer", "content": "Be terse."}


def test_hoist_moves_text_only_developer_messages_into_instructions() -> None:
    body = {"model": "m", "instructions": "Base.", "input": [
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Rule one."}]},
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "message", "role": "developer", "content": [
            {"type": "input_text", "text": "See"}, {"type": "input_image", "image_url": "data:image/png;base64,AA"}]},
        {"role": "developer", "content": "Rule two."},
    ]}
    out = prepare(body, hoist_instructions=True)
    assert out["instructions"] == "Base.\n\nRule one.\n\nRule two."
    assert [i["role"] for i in out["input"]] == ["user", "developer"]  # the image stays in place


def test_drops_reasoning_without_blob_and_claude_signatures() -> None:
    body = {"model": "m", "input": [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-ok"},
        {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "x"}]},
        {"type": "reasoning", "id": "rs_3", "summary": [], "encrypted_content": None},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Claude thought"}],
         "encrypted_content": "anthropic:EqQBCkgIARAB"},
        {"type": "reasoning", "summary": [], "encrypted_content": "anthropic-redacted:EmwKAhgBEgy"},
    ]}
    assert [i["id"] for i in prepare(body)["input"]] == ["rs_1"]


LONG_MCP = "mcp__github_enterprise_server_for_the_platform_team__search_pull_requests_by_label"
LONG_MCP_2 = "mcp__gitlab_enterprise_server_for_the_platform_team__search_pull_requests_by_label"


def test_long_tool_names_are_shortened_everywhere_and_can_be_mapped_back() -> None:
    body: dict[str, Any] = {"model": "m",
            "tools": [{"type": "function", "name": LONG_MCP, "parameters": {}},
                      {"type": "function", "name": LONG_MCP_2, "parameters": {}},
                      {"type": "function", "name": "mcp__search_pull_requests_by_label", "parameters": {}}],
            "tool_choice": {"type": "function", "name": LONG_MCP_2},
            "input": [{"type": "function_call", "call_id": "c1", "name": LONG_MCP, "arguments": "{}"}]}
    out = prepare(body)
    names = [t["name"] for t in out["tools"]]
    assert names == ["mcp__search_pull_requests_by_label_1", "mcp__search_pull_requests_by_label_2",
                     "mcp__search_pull_requests_by_label"]
    assert all(len(n) <= 64 for n in names)
    assert out["tool_choice"] == {"type": "function", "name": "mcp__search_pull_requests_by_label_2"}
    assert out["input"][0]["name"] == "mcp__search_pull_requests_by_label_1"
    reverse = {short: orig for orig, short in tool_name_map(body).items()}
    assert reverse["mcp__search_pull_requests_by_label_1"] == LONG_MCP
    assert body["tools"][0]["name"] == LONG_MCP


def test_shortened_names_are_stable_and_unique() -> None:
    names = [f"mcp__server_{n}_" + "x" * 60 + "__do_it" for n in range(5)] + ["n" * 100, "n" * 101]
    first = shorten_tool_names(names)
    assert first == shorten_tool_names(list(names))
    assert len(set(first.values())) == len(names)
    assert all(len(v) <= 64 for v in first.values())
    assert first[names[0]] == "mcp__do_it"


def test_long_call_ids_are_hashed_the_same_way_on_call_and_output() -> None:
    long_id = "toolu_" + "A" * 80
    out = prepare({"model": "m", "input": [
        {"type": "function_call", "call_id": long_id, "name": "ls", "arguments": "{}"},
        {"type": "function_call_output", "call_id": long_id, "output": "ok"},
        {"type": "function_call", "call_id": "call_short", "name": "ls", "arguments": "{}"},
    ]})
    ids = [i["call_id"] for i in out["input"]]
    assert ids[0] == ids[1] == shorten_call_id(long_id) and len(ids[0]) <= 64
    assert ids[2] == "call_short"


def test_rejects_input_that_is_neither_string_nor_list() -> None:
    with pytest.raises(TranslationError):
        prepare({"model": "m", "input": {"role": "user"}})


def test_long_tool_names_are_restored_in_replies_to_responses_clients():
    from gateway.formats.sse import Event, SSEParser
    from gateway.translate import responses_to_responses as responses_names
    from gateway.translate.mapping import Target

    long_name = "mcp__" + "very_long_server_name_" * 3 + "__search_documents"
    body = {"model": "gpt-5.5", "input": "hi", "tools": [{"type": "function", "name": long_name, "parameters": {}}]}
    upstream = prepare(responses_names.request(body, Target("gpt-5.5")))
    short = upstream["tools"][0]["name"]
    assert len(short) <= 64 and short != long_name

    item = {"type": "function_call", "name": short, "call_id": "c1", "arguments": "{}"}
    reply = {"id": "resp_1", "output": [item]}
    assert responses_names.response(reply, body, "gpt-5.5")["output"][0]["name"] == long_name

    translator = responses_names.stream(body, "gpt-5.5")
    out = translator.feed(Event("response.output_item.done", json.dumps(
        {"type": "response.output_item.done", "sequence_number": 5, "output_index": 0, "item": item})))
    [event] = list(SSEParser().feed(b"".join(out)))
    assert event.json()["item"]["name"] == long_name
    assert translator.finish()  # no terminal event yet: the stream is closed with an error
    assert responses_names.stream({"model": "gpt-5.5", "input": "hi"}, "gpt-5.5") is None
