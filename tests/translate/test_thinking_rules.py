"""What the Messages API refuses while thinking is on (PROTOCOLS.md §1.5), shared by the
translators and the Claude upstream."""
from __future__ import annotations

from typing import Any

from gateway.translate import responses_to_anthropic as r2a
from gateway.translate import thinking_rules as rules
from gateway.translate.mapping import Target

MSG = [{"role": "user", "content": "hi"}]
TOOL_USE = {"type": "tool_use", "id": "toolu_01", "name": "ls", "input": {}}
THINKING = {"type": "thinking", "thinking": "ls", "signature": "EqQB"}
TEXT = {"type": "text", "text": "Listing."}


def tool_loop(*assistant: dict[str, Any]) -> list[dict[str, Any]]:
    return [*MSG, {"role": "assistant", "content": list(assistant)},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "a"}]}]


def test_thinking_rules_drop_what_the_api_rejects():
    body = {"max_tokens": 1000, "thinking": {"type": "enabled", "budget_tokens": 2048}, "temperature": 0.2,
            "top_k": 5, "top_p": 0.5, "tool_choice": {"type": "tool", "name": "x"}, "messages": MSG}
    out = rules.enforce(body)
    assert "temperature" not in out and "top_k" not in out and "top_p" not in out
    assert out["tool_choice"] == {"type": "auto"} and out["max_tokens"] == 2048 + 1024
    assert body["temperature"] == 0.2 and body["max_tokens"] == 1000  # the argument is left alone


def test_allowed_values_stay_and_a_forced_choice_keeps_disable_parallel():
    body = {"max_tokens": 4096, "thinking": {"type": "adaptive"}, "temperature": 1, "top_p": 0.99,
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True}, "messages": MSG}
    out = rules.enforce(body)
    assert out["temperature"] == 1 and "top_p" not in out  # never both (§6.11 item 9)
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert rules.enforce({"max_tokens": 9, "thinking": {"type": "adaptive"}, "top_p": 0.95, "messages": MSG})["top_p"] == 0.95


def test_without_thinking_only_top_p_beside_temperature_goes():
    body = {"max_tokens": 10, "temperature": 0.2, "top_p": 0.5, "top_k": 3, "tool_choice": {"type": "any"},
            "thinking": {"type": "disabled"}, "messages": MSG}
    assert rules.enforce(body) == {k: v for k, v in body.items() if k != "top_p"}
    alone = {"max_tokens": 10, "top_p": 0.5, "messages": MSG}
    assert rules.enforce(alone) is alone


def test_a_tool_turn_that_does_not_open_with_thinking_is_unsigned():
    assert rules.unsigned_tool_turn(tool_loop(TOOL_USE))
    assert rules.unsigned_tool_turn(tool_loop(TEXT, THINKING, TOOL_USE))  # the API wants it first
    assert not rules.unsigned_tool_turn(tool_loop(THINKING, TEXT, TOOL_USE))
    assert not rules.unsigned_tool_turn(tool_loop({"type": "redacted_thinking", "data": "Em"}, TOOL_USE))
    assert not rules.unsigned_tool_turn(tool_loop(TEXT))  # no tool call: nothing to sign
    assert not rules.unsigned_tool_turn(MSG) and not rules.unsigned_tool_turn(None)


def test_thinking_goes_off_with_the_context_edits_that_need_it():
    body = {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015"},
                                             {"type": "clear_tool_uses_20250919"}]},
            "messages": tool_loop(TOOL_USE)}
    out = rules.off_for_unsigned_tool_turn(body)
    assert "thinking" not in out and out["output_config"] == {"effort": "high"}
    assert out["context_management"] == {"edits": [{"type": "clear_tool_uses_20250919"}]}
    only_clear = {**body, "context_management": {"edits": [{"type": "clear_thinking_20251015"}]}}
    assert "context_management" not in rules.off_for_unsigned_tool_turn(only_clear)
    signed = {**body, "messages": tool_loop(THINKING, TOOL_USE)}
    assert rules.off_for_unsigned_tool_turn(signed) is signed


def test_without_effort_keeps_the_rest_of_output_config():
    assert rules.without_effort({"output_config": {"effort": "max", "format": {"type": "json_schema"}}}) == {
        "output_config": {"format": {"type": "json_schema"}}}
    assert rules.without_effort({"output_config": {"effort": "max"}, "a": 1}) == {"a": 1}


def test_a_final_prefill_loses_its_thinking_when_thinking_is_off():
    body = {"messages": [*MSG, {"role": "assistant", "content": [THINKING, TEXT]}]}
    assert rules.without_final_thinking(body)["messages"][-1]["content"] == [TEXT]
    only = {"messages": [*MSG, {"role": "assistant", "content": [THINKING]}]}
    assert rules.without_final_thinking(only)["messages"] == MSG
    kept = {**only, "thinking": {"type": "adaptive"}}
    assert rules.without_final_thinking(kept) is kept


def test_a_translated_tool_turn_whose_thinking_is_not_first_turns_thinking_off():
    """Claude would refuse it: the block must open the turn, not merely be in it."""
    body = {"input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Listing."}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "anthropic:EqQBCkgIARAB"},
        {"type": "function_call", "call_id": "toolu_01", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_01", "output": "a.txt"},
    ], "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}], "reasoning": {"effort": "low"}}
    assert "thinking" not in r2a.request(body, Target("claude-sonnet-4-5-20250929"))
    adaptive = r2a.request(body, Target("claude-opus-4-6", adaptive_thinking=True))
    assert "thinking" not in adaptive and "output_config" not in adaptive
