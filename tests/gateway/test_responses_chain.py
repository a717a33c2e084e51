"""ResponseChain: the per-connection conversation of the Responses WebSocket mode (PROTOCOLS.md §3.7). Pure."""
from __future__ import annotations

import pytest

from gateway.formats.responses_chain import PreviousResponseNotFoundError, ResponseChain, input_items


def msg(role: str, text: str) -> dict:
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}


def test_a_request_without_previous_response_goes_up_as_sent_minus_the_control_fields():
    body = ResponseChain().expand({"type": "response.create", "model": "gpt-5.5", "input": [msg("user", "hi")],
                                   "generate": True, "stream": False, "client_metadata": {"turn_id": "t1"}})
    assert body == {"model": "gpt-5.5", "input": [msg("user", "hi")], "stream": True,
                    "client_metadata": {"turn_id": "t1"}}


def test_previous_response_id_rebuilds_input_from_the_last_request_and_its_output():
    chain = ResponseChain()
    first = chain.expand({"type": "response.create", "model": "m", "input": "hi"})
    call = {"type": "function_call", "call_id": "c1", "name": "ls", "arguments": "{}"}
    chain.remember(first, "resp_1", [call])
    output = {"type": "function_call_output", "call_id": "c1", "output": "a.txt"}
    second = chain.expand({"type": "response.create", "model": "m", "previous_response_id": "resp_1",
                           "input": [output]})
    assert second["input"] == [msg("user", "hi"), call, output]
    assert "previous_response_id" not in second
    chain.remember(second, "resp_2", [msg("assistant", "done")])
    third = chain.expand({"type": "response.create", "model": "m", "previous_response_id": "resp_2", "input": []})
    assert third["input"] == [msg("user", "hi"), call, output, msg("assistant", "done")]


@pytest.mark.parametrize("previous", ["resp_1", "resp_other"])
def test_only_the_last_response_can_be_continued(previous):
    chain = ResponseChain()
    chain.remember(chain.expand({"type": "response.create", "input": []}), "resp_1", [])
    chain.remember(chain.expand({"type": "response.create", "input": []}), "resp_2", [])
    with pytest.raises(PreviousResponseNotFoundError, match=previous):
        chain.expand({"type": "response.create", "previous_response_id": previous, "input": []})


def test_a_fresh_connection_knows_no_previous_response():
    with pytest.raises(PreviousResponseNotFoundError):
        ResponseChain().expand({"type": "response.create", "previous_response_id": "resp_1", "input": []})


def test_input_items_normalises_strings_and_leaves_lists():
    assert input_items("hi") == [msg("user", "hi")]
    assert input_items(None) == []
    items = [msg("developer", "x")]
    assert input_items(items) == items and input_items(items) is not items
