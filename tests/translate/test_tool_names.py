"""Tool names over 64 characters: shortened for the upstream, and the client's names restored."""
from __future__ import annotations

from gateway.translate import anthropic_to_responses, chat_to_responses
from gateway.translate.mapping import Target
from gateway.translate.tool_names import (
    ToolNames,
    anthropic_tool_names,
    chat_tool_names,
    renamed_back,
    restoring_tool_names,
    tool_name_map,
    with_client_names,
    with_short_names,
)
from gateway.upstream.codex_body import prepare

# Two long names that shorten to the same base: which gets _1 and which _2 depends on the order met.
FIRST = "mcp__" + "a" * 70 + "__search"
SECOND = "mcp__" + "b" * 70 + "__search"
TARGET = Target("gpt-5.5")


def upstream_reverse(translated: dict) -> dict[str, str]:
    """Name sent to Codex -> client name, read off the tools of the body really sent."""
    sent = prepare(translated)
    return {s["name"]: t["name"] for t, s in zip(translated["tools"], sent["tools"], strict=True)}


def test_a_chat_clients_names_are_restored_from_the_order_codex_meets_them():
    body = {"messages": [{"role": "user", "content": "go"},
                         {"role": "assistant", "tool_calls": [
                             {"id": "c1", "type": "function", "function": {"name": SECOND, "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "c1", "content": "ok"}],
            "tools": [{"type": "function", "function": {"name": FIRST, "parameters": {}}},
                      {"type": "function", "function": {"name": SECOND, "parameters": {}}}]}
    reverse = upstream_reverse(chat_to_responses.request(body, TARGET))
    assert restoring_tool_names(chat_tool_names(body)) == reverse
    assert set(reverse.values()) == {FIRST, SECOND} and all(len(s) <= 64 for s in reverse)


def test_an_anthropic_clients_names_are_restored_from_the_order_codex_meets_them():
    body = {"max_tokens": 100, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": SECOND, "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "ok"}]}],
        "tools": [{"name": SECOND, "input_schema": {"type": "object"}}, {"name": FIRST, "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": FIRST}}
    reverse = upstream_reverse(anthropic_to_responses.request(body, TARGET))
    assert restoring_tool_names(anthropic_tool_names(body)) == reverse


def test_a_responses_body_is_shortened_and_its_reply_restored():
    body = {"input": [{"type": "function_call", "call_id": "c1", "name": FIRST, "arguments": "{}"}],
            "tools": [{"type": "function", "name": FIRST}, {"type": "custom", "name": "apply_patch"}]}
    short = with_short_names(body)
    assert short["input"][0]["name"] == short["tools"][0]["name"] == "mcp__search"
    assert short["tools"][1] is body["tools"][1] and body["tools"][0]["name"] == FIRST
    reply = {"output": [{"type": "function_call", "name": "mcp__search"}, {"type": "message", "name": "mcp__search"}]}
    assert with_client_names(reply, renamed_back(body))["output"] == [
        {"type": "function_call", "name": FIRST}, {"type": "message", "name": "mcp__search"}]
    fits = {"input": [], "tools": [{"type": "function", "name": "ls"}]}
    assert with_short_names(fits) is fits and renamed_back(fits) == {} and tool_name_map(fits) == {"ls": "ls"}


def test_claude_names_are_cleaned_shortened_and_kept_apart():
    names = ToolNames(["read file", "read_file", FIRST])
    assert names.upstream("read file") == "read_file" and names.upstream("read_file") == "read_file_1"
    assert names.client("read_file_1") == "read_file" and names.client(names.upstream(FIRST)) == FIRST
