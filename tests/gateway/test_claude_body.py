"""Claude upstream body rules: identity block, cache marks, betas (the thinking rules: tests/translate/test_thinking_rules.py)."""
from __future__ import annotations

from gateway.upstream import claude_body
from gateway.upstream.codex_body import prepare as codex_prepare

MSG = [{"role": "user", "content": "hi"}]


def test_identity_block_is_prepended_with_a_cache_mark_when_there_is_room():
    out = claude_body.with_identity({"system": "Be terse.", "messages": MSG})
    assert out["system"][0] == {"type": "text", "text": claude_body.IDENTITY, "cache_control": {"type": "ephemeral"}}
    assert out["system"][1] == {"type": "text", "text": "Be terse."}


def test_identity_gets_no_cache_mark_past_four_marks_or_before_a_one_hour_mark():
    mark = {"type": "ephemeral"}
    four = [{"type": "text", "text": f"b{i}", "cache_control": mark} for i in range(4)]
    assert "cache_control" not in claude_body.with_identity({"system": four, "messages": MSG})["system"][0]
    hour = [{"type": "text", "text": "rules", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert "cache_control" not in claude_body.with_identity({"system": hour, "messages": MSG})["system"][0]


def test_existing_identity_is_not_doubled():
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1"},
              {"type": "text", "text": claude_body.KNOWN_IDENTITIES[2]}]
    assert claude_body.with_identity({"system": system, "messages": MSG})["system"] == system


def test_client_betas_are_merged_with_ours_without_duplicates():
    merged = claude_body.merge_betas("a, oauth-2025-04-20,b", ["oauth-2025-04-20", "c"])
    assert merged == "a,oauth-2025-04-20,b,c"


def test_codex_body_drops_fields_the_backend_rejects():
    out = codex_prepare({"model": "gpt-5.5", "input": "hi", "max_tool_calls": 3, "temperature": 0.1,
                         "max_output_tokens": 99})
    assert not {"max_tool_calls", "temperature", "max_output_tokens"} & set(out)
    assert out["stream"] is True and out["store"] is False and out["instructions"] == ""


def test_codex_body_renames_call_ids_a_chat_client_reused_across_turns():
    def turn(output):
        return [{"type": "function_call", "call_id": "call_0", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_0", "output": output}]

    out = codex_prepare({"model": "gpt-5.5", "input": [*turn("first"), *turn("second")]})
    ids = [item["call_id"] for item in out["input"]]
    assert ids[0] == ids[1] == "call_0"
    assert ids[2] == ids[3] != "call_0"
