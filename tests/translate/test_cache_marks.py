"""Prompt-cache breakpoints for Chat and Responses clients of Claude (issue 10, gateway/translate/cache_marks.py)."""
from __future__ import annotations

from typing import Any

from gateway.translate import chat_to_anthropic as c2a
from gateway.translate import responses_to_anthropic as r2a
from gateway.translate.cache_marks import add_cache_marks, count_marks
from gateway.translate.mapping import Target

TARGET = Target("claude-sonnet-4-6", max_tokens=32000)
MARK = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("read", "write")]


def marked(body: dict[str, Any]) -> list[str]:
    """Where the marks are: ``tools.1``, ``system.0``, ``messages.2.0``."""
    where = [f"tools.{i}" for i, t in enumerate(body.get("tools") or []) if "cache_control" in t]
    where += [f"system.{i}" for i, b in enumerate(body.get("system") or []) if "cache_control" in b]
    for i, message in enumerate(body["messages"]):
        where += [f"messages.{i}.{j}" for j, b in enumerate(message["content"]) if "cache_control" in b]
    return where


def test_a_second_chat_turn_gets_claude_codes_four_breakpoints() -> None:
    body = {"messages": [{"role": "system", "content": "Be terse."}, {"role": "system", "content": "Repo: x"},
                         {"role": "user", "content": "Read a.txt"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "hello"},
                         {"role": "assistant", "content": "It says hello."},
                         {"role": "user", "content": [{"type": "text", "text": "Thanks."}, {"type": "text", "text": "Now b.txt"}]}],
            "tools": TOOLS}
    out = c2a.request(body, TARGET)
    # last tool, last system block, the user message before the final one, the final message's last block
    assert marked(out) == ["tools.1", "system.1", "messages.2.0", "messages.4.1"]
    assert out["messages"][2]["content"][0]["type"] == "tool_result"
    assert all(b.get("cache_control", MARK) == MARK for b in out["system"])


def test_a_first_responses_turn_marks_tools_system_and_the_question() -> None:
    body = {"instructions": "Be terse.", "input": "Hi",
            "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}]}
    out = r2a.request(body, TARGET)
    assert marked(out) == ["tools.0", "system.0", "messages.0.0"]
    assert count_marks(out) == 3  # room for the identity block's mark (gateway/upstream/claude_body.py)


def test_the_clients_own_marks_are_kept_and_only_what_fits_is_added() -> None:
    body = {"messages": [{"role": "system", "content": [{"type": "text", "text": "A", "cache_control": MARK}]},
                         {"role": "user", "content": [{"type": "text", "text": "one", "cache_control": MARK}]},
                         {"role": "assistant", "content": "two"},
                         {"role": "user", "content": [{"type": "text", "text": "three", "cache_control": MARK}]}],
            "tools": TOOLS}
    out = c2a.request(body, TARGET)
    # three were the client's; one fits, and the most valuable missing one is the tools'
    assert marked(out) == ["tools.1", "system.0", "messages.0.0", "messages.2.0"]
    full = {"messages": [{"role": "user", "content": [{"type": "text", "text": t, "cache_control": MARK}
                                                      for t in ("a", "b", "c", "d")]}], "tools": TOOLS}
    assert marked(c2a.request(full, TARGET)) == ["messages.0.0", "messages.0.1", "messages.0.2", "messages.0.3"]


def test_nothing_goes_before_a_clients_one_hour_mark() -> None:
    """The API refuses a 5-minute mark ahead of a 1-hour one."""
    body = {"instructions": "Be terse.", "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "big context", "cache_control": HOUR}]},
                      {"role": "assistant", "content": "ok"}, {"role": "user", "content": "question"}]}
    out = r2a.request(body, TARGET)
    assert marked(out) == ["messages.0.0", "messages.2.0"]
    assert out["messages"][0]["content"][0]["cache_control"] == HOUR


def test_thinking_blocks_are_never_marked() -> None:
    thinking = {"type": "thinking", "thinking": "hm", "signature": "s"}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]},
                         {"role": "assistant", "content": [{"type": "text", "text": "a"}, thinking]}]}
    add_cache_marks(body)
    assert "cache_control" not in thinking
    assert body["messages"][1]["content"][0]["cache_control"] == MARK


def test_marks_in_tool_results_count_and_a_top_level_mark_takes_a_slot() -> None:
    inner = [{"type": "text", "text": f"r{i}", "cache_control": MARK} for i in range(3)]
    body: dict[str, Any] = {"system": [{"type": "text", "text": "s"}], "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": inner}]}]}
    assert count_marks(body) == 3
    body["cache_control"] = MARK
    add_cache_marks(body)
    assert count_marks(body) == 3


def test_adding_twice_adds_nothing_more() -> None:
    out = c2a.request({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}, TARGET)
    before = marked(out)
    add_cache_marks(out)
    assert marked(out) == before == ["system.0", "messages.0.0"]
