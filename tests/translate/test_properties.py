"""Property tests: random VALID client requests translate to requests the fake upstreams accept.

For every (client format x provider) route the body is built as the gateway
builds it (``routes.route_for(...).request`` then ``codex_body.prepare`` or
``claude_body.prepare``) and checked with the fakes' pure validators
(``tests/fakes/anthropic_rules``, ``tests/fakes/codex_rules``), which reject
what the real upstreams reject. Besides acceptance:

- translation is deterministic and leaves the client body untouched;
- every user text of the client reaches an upstream user turn;
- every client tool call reaches the upstream with its own result (same id
  when the id is already valid for both upstreams).

The strategies live in ``strategies.py``. Runs are derandomized (the same
examples every run, no example database) so CI is reproducible.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.routes import route_for
from gateway.translate.anthropic_build import MISSING_RESULT
from gateway.translate.mapping import Target
from gateway.upstream import claude_body, codex_body
from tests.fakes.anthropic_rules import (
    validate_messages_body,
    validate_messages_request,
)
from tests.fakes.codex_rules import validate_codex_request
from tests.translate import strategies as gen

Json = dict[str, Any]

CLAUDE_HEADERS = {"anthropic-version": "2023-06-01", "authorization": "Bearer sk-ant-oat01-x",
                  "anthropic-beta": "claude-code-20250219,oauth-2025-04-20"}
CODEX_HEADERS = {"authorization": "Bearer x", "chatgpt-account-id": "acct"}
USER_ID = claude_body.stable_user_id("1", "acct-uuid", "session")
PORTABLE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # valid, unchanged, at both upstreams


# Derandomized: the same examples on every run and machine; no .hypothesis database.
# 60 requests per client format, each checked on both routes: the file runs in ~5-7 s.
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)


def upstream_body(client_format: str, provider: str, body: Json, target: Target) -> Json:
    """The body the gateway sends upstream for a client request (as gateway/relay does it)."""
    translated = route_for(client_format, provider).request(body, target)
    if provider == "codex":
        return codex_body.prepare(translated)
    return claude_body.prepare(translated, passthrough=False, user_id=USER_ID)


def validate(provider: str, body: Json) -> Any:
    wire = json.loads(json.dumps(body, allow_nan=False))  # what actually crosses the network
    if provider == "codex":
        return validate_codex_request(CODEX_HEADERS, wire)
    return validate_messages_request(CLAUDE_HEADERS, wire)


# -- what a client request holds ------------------------------------------------------


def _texts(content: Any, kinds: tuple[str, ...] = ("text", "input_text", "output_text")) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [p["text"] for p in content or [] if isinstance(p, dict) and p.get("type") in kinds]


def _is_message(item: Json) -> bool:
    return item.get("type", "message") == "message"


def client_user_texts(client_format: str, body: Json) -> list[str]:
    if client_format == "responses":
        value = body["input"]
        if isinstance(value, str):
            return [value]
        found = [t for i in value if _is_message(i) and i.get("role") == "user" for t in _texts(i["content"])]
    else:
        found = [t for m in body["messages"] if m["role"] == "user" for t in _texts(m["content"])]
    return [t for t in found if t.strip()]


def client_calls(client_format: str, body: Json) -> list[tuple[str, list[str]]]:
    """(call id, texts of its result) for every tool call in the client's history."""
    ids: list[str] = []
    results: dict[str, list[str]] = {}
    if client_format == "anthropic":
        for message in body["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block["type"] == "tool_use":
                    ids.append(block["id"])
                elif block["type"] == "tool_result":
                    results[block["tool_use_id"]] = _texts(block.get("content"))
    elif client_format == "chat":
        for message in body["messages"]:
            ids += [c["id"] for c in message.get("tool_calls") or []]
            if message["role"] == "tool":
                results[message["tool_call_id"]] = _texts(message["content"])
    else:
        for item in body["input"] if isinstance(body["input"], list) else []:
            if item.get("type") in ("function_call", "custom_tool_call"):
                ids.append(item["call_id"])
            elif item.get("type") in ("function_call_output", "custom_tool_call_output"):
                results[item["call_id"]] = _texts(item["output"])
    return [(i, [t for t in results[i] if t.strip()]) for i in ids]


# -- what an upstream body holds ------------------------------------------------------


def upstream_user_texts(provider: str, body: Json) -> list[str]:
    if provider == "codex":
        return [t for i in body["input"] if _is_message(i) and i.get("role") == "user" for t in _texts(i["content"])]
    return [t for m in body["messages"] if m["role"] == "user" for t in _texts(m["content"], ("text",))]


def upstream_calls(provider: str, body: Json) -> tuple[list[str], dict[str, str]]:
    """Upstream call ids in order, and each id's result text (joined)."""
    ids: list[str] = []
    results: dict[str, str] = {}
    if provider == "codex":
        for item in body["input"]:
            if item.get("type") in ("function_call", "custom_tool_call"):
                ids.append(item["call_id"])
            elif item.get("type") in ("function_call_output", "custom_tool_call_output"):
                results[item["call_id"]] = "\n".join(_texts(item["output"]))
    else:
        for message in body["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block["type"] == "tool_use":
                    ids.append(block["id"])
                elif block["type"] == "tool_result":
                    results[block["tool_use_id"]] = "\n".join(_texts(block.get("content"), ("text",)))
    return ids, results


def undeclared_calls(provider: str, body: Json) -> set[str]:
    """Names of history calls that no declared upstream tool has (the strategies only
    call tools they declare, so a translation must keep every call pointing at one)."""
    declared = {t["name"] for t in body.get("tools") or [] if "name" in t}
    declared |= {inner["name"] for t in body.get("tools") or [] for inner in t.get("tools") or []}
    if provider == "codex":
        called = {i["name"] for i in body["input"] if i.get("type") in ("function_call", "custom_tool_call")}
    else:
        called = {b["name"] for m in body["messages"] if isinstance(m["content"], list)
                  for b in m["content"] if b["type"] == "tool_use"}
    return called - declared if body.get("tools") else set()


# -- the properties -------------------------------------------------------------------


def check_route(client_format: str, provider: str, body: Json, target: Target) -> None:
    snapshot = copy.deepcopy(body)
    out = upstream_body(client_format, provider, body, target)
    assert body == snapshot, "translation mutated the client request"
    assert upstream_body(client_format, provider, copy.deepcopy(body), target) == out, "not deterministic"

    rejected = validate(provider, out)
    assert rejected is None, f"{provider} rejected the translated body: {rejected}\n{json.dumps(out, indent=1)}"

    sent = upstream_user_texts(provider, out)
    for text in client_user_texts(client_format, body):
        assert any(text in s for s in sent), f"user text {text!r} lost"

    assert not undeclared_calls(provider, out), f"history calls of undeclared tools: {undeclared_calls(provider, out)}"
    ids, results = upstream_calls(provider, out)
    calls = client_calls(client_format, body)
    assert len(ids) == len(calls), f"{len(calls)} client tool calls became {len(ids)}"
    assert not any(MISSING_RESULT in r for r in results.values()), "a tool result was replaced by a placeholder"
    for call_id, texts in calls:
        if PORTABLE_ID.match(call_id):
            assert call_id in results, f"tool call {call_id} lost its id or its result"
            candidates = [results[call_id]]
        else:
            candidates = list(results.values())
        for text in texts:
            assert any(text in r for r in candidates), f"result {text!r} of {call_id} lost"


PROVIDERS = {"claude": gen.claude_targets, "codex": gen.codex_targets}


def check_client_request(client_format: str, body: Json, data: st.DataObject) -> None:
    """Both routes of one client request: drawing a conversation costs far more than
    translating it, so each drawn request is checked against both upstreams."""
    for provider, targets in PROVIDERS.items():
        target = data.draw(targets, label=f"{provider} target")
        try:
            check_route(client_format, provider, body, target)
        except AssertionError as exc:
            raise AssertionError(f"route {client_format} -> {provider}: {exc}") from exc


@PROPERTY
@given(body=gen.anthropic_requests(), data=st.data())
def test_anthropic_requests_translate_to_requests_both_upstreams_accept(body: Json, data: st.DataObject) -> None:
    check_client_request("anthropic", body, data)


@PROPERTY
@given(body=gen.chat_requests(), data=st.data())
def test_chat_requests_translate_to_requests_both_upstreams_accept(body: Json, data: st.DataObject) -> None:
    check_client_request("chat", body, data)


@PROPERTY
@given(body=gen.responses_requests(), data=st.data())
def test_responses_requests_translate_to_requests_both_upstreams_accept(body: Json, data: st.DataObject) -> None:
    check_client_request("responses", body, data)


def _api_valid_subset(body: Json) -> bool:
    """Bodies the Messages API itself takes: no gateway-issued ``openai:`` thinking, and
    not temperature with top_p (older models take both; the gateway keeps temperature)."""
    return claude_body.FOREIGN_SIGNATURE_PREFIX not in json.dumps(body) and not {"temperature", "top_p"} <= set(body)


@settings(PROPERTY, max_examples=25)
@given(body=gen.anthropic_requests().filter(_api_valid_subset))
def test_the_anthropic_strategy_draws_requests_the_messages_api_accepts(body: Json) -> None:
    """The strategy is sound: its requests are valid Messages requests."""
    assert validate_messages_body(json.loads(json.dumps(body)), oauth=False) is None


# -- regressions for the bugs these properties found ------------------------------------

CLAUDE = Target("claude-sonnet-4-5-20250929")


def test_claude_code_history_with_a_gpt_tool_turn_turns_thinking_off() -> None:
    """A Claude Code conversation whose last tool round came from a GPT model (through the
    gateway, so its thinking is signed ``openai:...``): that block is dropped for Claude, and
    thinking must go too, or Claude refuses the unsigned tool_use turn (PROTOCOLS.md §6.11.8)."""
    body = {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "stream": True,
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "tools": [{"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
        "messages": [
            {"role": "user", "content": "List files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "ls", "signature": "openai:enc_0123"},
                {"type": "tool_use", "id": "call_a1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_a1", "content": "a.txt"}]},
        ],
    }
    out = upstream_body("anthropic", "claude", body, CLAUDE)
    assert validate("claude", out) is None
    assert "thinking" not in out and "context_management" not in out
    assert out["messages"][1]["content"] == [body["messages"][1]["content"][1]]
    assert out["output_config"] == {"effort": "high"}


def test_signed_claude_thinking_keeps_thinking_on_after_foreign_blocks_are_dropped() -> None:
    body = {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "thinking": {"type": "adaptive"},
        "tools": [{"name": "Bash", "input_schema": {"type": "object", "properties": {}}}],
        "messages": [
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": "openai:enc_1"},
                                              {"type": "text", "text": "Earlier GPT answer"}]},
            {"role": "user", "content": "Now run it"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "run", "signature": gen.sign_thinking("run")},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "ok"}]},
        ],
    }
    out = upstream_body("anthropic", "claude", body, CLAUDE)
    assert validate("claude", out) is None
    assert out["thinking"] == {"type": "adaptive"}
    assert out["messages"][1]["content"] == [{"type": "text", "text": "Earlier GPT answer"}]


@pytest.mark.parametrize("client_format", ["chat", "responses"])
def test_a_conversation_opening_with_an_assistant_greeting_gets_a_user_turn_first(client_format: str) -> None:
    """OpenAI formats allow an assistant message first (a chat UI's greeting); Anthropic
    needs a user turn first (PROTOCOLS.md §6.11.6), so a neutral one is put in front."""
    greeting, question = "Hello! How can I help?", "What is 2+2?"
    if client_format == "chat":
        body: Json = {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                                  {"role": "assistant", "content": greeting},
                                                  {"role": "user", "content": question}]}
    else:
        body = {"model": "m", "instructions": "Be brief.", "input": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": greeting}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}]}
    out = upstream_body(client_format, "claude", body, CLAUDE)
    assert validate("claude", out) is None
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    unmarked = [[{k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]] for m in out["messages"]]
    assert unmarked[0] == [{"type": "text", "text": "."}]
    assert unmarked[1] == [{"type": "text", "text": greeting}]


# -- prompt-cache breakpoints (gateway/translate/cache_marks.py) ------------------------------------


def _client_text_parts(client_format: str, body: Json) -> list[Json]:
    """The client's text parts that may carry a ``cache_control`` of its own."""
    items = body["messages"] if client_format == "chat" else body["input"] if isinstance(body["input"], list) else []
    kinds = ("text",) if client_format == "chat" else ("input_text", "output_text")
    return [p for item in items if isinstance(item.get("content"), list)
            for p in item["content"] if isinstance(p, dict) and p.get("type") in kinds and str(p.get("text", "")).strip()]


def _upstream_marks(body: Json) -> list[Json]:
    found: list[Json] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "cache_control" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk({k: body.get(k) for k in ("tools", "system", "messages")})
    return found


@settings(PROPERTY, max_examples=30)
@given(client_format=st.sampled_from(("chat", "responses")), data=st.data())
def test_claude_gets_at_most_four_breakpoints_and_keeps_the_clients(client_format: str, data: st.DataObject) -> None:
    body = data.draw(gen.chat_requests() if client_format == "chat" else gen.responses_requests(), label="request")
    parts = _client_text_parts(client_format, body)
    chosen = data.draw(st.sets(st.integers(0, len(parts) - 1), max_size=4) if parts else st.just(set()), label="marks")
    # one TTL per request, as a client sets them (the API wants 1h marks before 5m ones)
    mark = data.draw(st.sampled_from(({"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"})), label="ttl")
    for i in chosen:
        parts[i]["cache_control"] = dict(mark)
    out = upstream_body(client_format, "claude", body, data.draw(gen.claude_targets, label="target"))
    assert validate("claude", out) is None
    marks = _upstream_marks(out)
    assert len(marks) <= 4
    final = out["messages"][-1]["content"]
    if len(chosen) < 4:  # with room left, the newest turn always gets one: it is what the next turn reads
        assert any("cache_control" in b for b in final), "the final message was not marked"
    kept = {b["text"] for b in marks if b.get("type") == "text" and b["cache_control"] == mark}
    for i in chosen:
        assert parts[i]["text"] in kept, f"the client's mark on {parts[i]['text']!r} was lost"
