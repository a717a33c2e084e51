"""ResponseAggregator: a Codex stream served to a stream:false client (PROTOCOLS.md §5.7)."""
from __future__ import annotations

import json
from typing import Any

import pytest
from tests.translate.codex_sse import USAGE, done_items, events_from, function_call, message, reasoning, render, stream

from gateway.formats.responses_aggregate import ResponseAggregator, UpstreamStreamError
from gateway.translate import anthropic_to_responses, chat_to_responses

ITEMS = [
    *reasoning(0, "rs_01", [["Need the ", "listing."]], encrypted="gAAAA-blob"),
    *message(1, "msg_01", ["Check", "ing."]),
    *function_call(2, "fc_01", "call_a1", "LS", ["{\"path\":", "\"src\"}"]),
]


def aggregate(text: str, seed: int = 0) -> ResponseAggregator:
    agg = ResponseAggregator()
    for event in events_from(text, seed):
        agg.feed(event)
    return agg


@pytest.mark.parametrize("seed", range(3))
def test_completed_stream_returns_the_final_response(seed: int) -> None:
    result = aggregate(stream(ITEMS), seed).result()
    assert result["id"] == "resp_01" and result["status"] == "completed"
    assert result["output"] == done_items(ITEMS)
    assert result["usage"] == USAGE


def test_empty_output_is_rebuilt_from_done_items_in_index_order() -> None:
    reordered = [*ITEMS[-4:], *ITEMS[:-4]]  # the function call finishes first
    result = aggregate(stream(reordered, output=[])).result()
    assert [item["type"] for item in result["output"]] == ["reasoning", "message", "function_call"]
    assert result["output"][1]["content"][0]["text"] == "Checking."
    assert result["output"][2]["arguments"] == "{\"path\":\"src\"}"


def test_missing_item_ids_are_filled() -> None:
    without_ids = [{k: v for k, v in item.items() if k != "id"} for item in done_items(ITEMS)]
    result = aggregate(stream(ITEMS, output=without_ids)).result()
    assert [item["id"] for item in result["output"]] == ["rs_01", "msg_01", "fc_01"]
    anonymous = [{**e, "item": {k: v for k, v in e["item"].items() if k != "id"}}
                 if e["type"] == "response.output_item.done" else e for e in message(0, "msg_x", ["Hi"])]
    result = aggregate(stream(anonymous, output=[])).result()
    assert result["output"][0]["id"] == "msg_resp_01_0"


def test_incomplete_stream_is_returned_as_incomplete() -> None:
    result = aggregate(stream(ITEMS[:13], terminal="response.incomplete")).result()
    assert result["status"] == "incomplete"
    assert result["incomplete_details"] == {"reason": "max_output_tokens"}


def test_failed_stream_raises_502_with_the_upstream_code() -> None:
    text = stream(ITEMS[:5], terminal="response.failed", extra={"error": {
        "code": "context_length_exceeded", "message": "Your input exceeds the context window of this model."}})
    with pytest.raises(UpstreamStreamError) as exc:
        aggregate(text).result()
    assert (exc.value.status, exc.value.code) == (502, "context_length_exceeded")
    assert exc.value.message == "Your input exceeds the context window of this model."


def test_error_event_raises_502() -> None:
    text = stream([], terminal="error", extra={"code": "server_error", "message": "An error occurred."})
    with pytest.raises(UpstreamStreamError) as exc:
        aggregate(text).result()
    assert (exc.value.status, exc.value.code, exc.value.message) == (502, "server_error", "An error occurred.")


def test_stream_without_terminal_event_raises_408() -> None:
    with pytest.raises(UpstreamStreamError) as exc:
        aggregate(stream(ITEMS, terminal="")).result()
    assert (exc.value.status, exc.value.message) == (408, "upstream stream ended early")


def test_events_after_the_terminal_one_are_ignored() -> None:
    text = stream(ITEMS) + render([{"type": "error", "code": "server_error", "message": "late"}])
    assert aggregate(text).result()["status"] == "completed"


def test_unparseable_events_are_ignored() -> None:
    text = "event: keepalive\ndata: not json\n\n: comment\n\n" + stream(message(0, "msg_1", ["Hi"]))
    assert aggregate(text).result()["output"][0]["content"][0]["text"] == "Hi"


CHAT_BODY: dict[str, Any] = {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "list src"}],
                             "tools": [{"type": "function", "function": {"name": "LS", "parameters": {}}}]}
ANTHROPIC_BODY: dict[str, Any] = {"model": "gpt-5-codex", "max_tokens": 1024,
                                  "messages": [{"role": "user", "content": "list src"}],
                                  "tools": [{"name": "LS", "input_schema": {"type": "object"}}]}


def test_aggregate_translates_for_a_non_streaming_chat_client() -> None:
    result = chat_to_responses.response(aggregate(stream(ITEMS, output=[])).result(), CHAT_BODY, "gpt-5-codex")
    choice = result["choices"][0]
    assert choice["message"]["content"] == "Checking."
    assert choice["message"]["reasoning_content"] == "Need the listing."
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "LS", "arguments": "{\"path\":\"src\"}"}
    assert choice["finish_reason"] == "tool_calls"


def test_aggregate_translates_for_a_non_streaming_anthropic_client() -> None:
    result = anthropic_to_responses.response(aggregate(stream(ITEMS)).result(), ANTHROPIC_BODY, "gpt-5-codex")
    assert [b["type"] for b in result["content"]] == ["thinking", "text", "tool_use"]
    assert result["content"][0]["signature"] == "openai:gAAAA-blob"
    assert result["content"][2]["input"] == json.loads("{\"path\":\"src\"}")
    assert result["stop_reason"] == "tool_use"
