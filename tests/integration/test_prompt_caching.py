"""OpenAI-format clients of Claude keep prompt caching (issue 10): the gateway marks cache
breakpoints (gateway/translate/cache_marks.py), so the second turn of a conversation reads
what the first wrote, in the usage rows and in the usage the client sees."""
from __future__ import annotations

from typing import Any

import openai
import pytest

from gateway.usage import reports
from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-sonnet-4-6"
# Long enough to cache: the fake, like the API, caches nothing under 1,024 tokens.
SYSTEM = "You are a careful reviewer. " + "Read the whole diff before you answer, and answer briefly. " * 80
QUESTION, FOLLOW_UP = "Is this diff safe?", "And the tests?"


@pytest.fixture
def client(gateway: str, api_key_factory: Any, credential_factory: Any) -> Any:
    credential_factory("claude")  # one account: its prompt cache is what the second turn reads
    _, key = api_key_factory(models=["claude-*"])
    with openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0) as c:
        yield c


def chat_turn(client: Any, messages: list[dict[str, Any]], stream: bool) -> tuple[str, int, int]:
    """(answer, prompt tokens, cached tokens) as the Chat client sees them."""
    if not stream:
        done = client.chat.completions.create(model=MODEL, messages=messages)
        usage = done.usage
        return done.choices[0].message.content, usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    return text, usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens


def responses_turn(client: Any, items: list[dict[str, Any]], stream: bool) -> tuple[str, int, int]:
    """(answer, input tokens, cached tokens) as the Responses client sees them."""
    if stream:
        with client.responses.stream(model=MODEL, instructions=SYSTEM, input=items) as s:
            done = s.get_final_response()
    else:
        done = client.responses.create(model=MODEL, instructions=SYSTEM, input=items)
    usage = done.usage
    return done.output_text, usage.input_tokens, usage.input_tokens_details.cached_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_chat_clients_second_turn_reads_claudes_prompt_cache(client: Any, fake: Any, stream: bool) -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    answer, prompt_1, cached_1 = chat_turn(client, messages, stream)
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": FOLLOW_UP}]
    _, prompt_2, cached_2 = chat_turn(client, messages, stream)
    check_two_turns(fake, (prompt_1, cached_1), (prompt_2, cached_2))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_responses_clients_second_turn_reads_claudes_prompt_cache(client: Any, fake: Any, stream: bool) -> None:
    items: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    answer, prompt_1, cached_1 = responses_turn(client, items, stream)
    items += [{"role": "assistant", "content": answer}, {"role": "user", "content": FOLLOW_UP}]
    _, prompt_2, cached_2 = responses_turn(client, items, stream)
    check_two_turns(fake, (prompt_1, cached_1), (prompt_2, cached_2))


def check_two_turns(fake: Any, first: tuple[int, int], second: tuple[int, int]) -> None:
    sent = [r.json for r in fake.requests("claude") if r.path == "/v1/messages"]
    assert len(sent) == 2
    for body in sent:  # at most four breakpoints, the API's limit, and the newest turn always has one
        assert str(body).count("'cache_control'") <= 4
        assert any("cache_control" in b for b in body["messages"][-1]["content"])
    turn_1, turn_2 = wait_for_usage(2, timeout=30)  # the machine may be busy
    # turn 1 writes the system prompt and the question; nothing was cached before
    assert turn_1.cache_read_tokens == 0 and turn_1.cache_write_tokens > 1024
    # turn 2 reads exactly that prefix, and writes only what the conversation added
    assert turn_2.cache_read_tokens == turn_1.cache_write_tokens
    assert 0 < turn_2.cache_write_tokens < turn_1.cache_write_tokens
    # the client sees the prompt as OpenAI counts it: cached tokens are part of the input
    assert first == (turn_1.input_tokens + turn_1.cache_write_tokens, 0)
    assert second == (turn_2.input_tokens + turn_2.cache_read_tokens + turn_2.cache_write_tokens,
                      turn_2.cache_read_tokens)
    # the usage report's hit rate for the key: cache reads over the whole prompt of both turns
    [row] = reports.totals("key")
    prompt = sum(t.input_tokens + t.cache_read_tokens + t.cache_write_tokens for t in (turn_1, turn_2))
    assert row["cache_hit_rate"] == round(turn_2.cache_read_tokens / prompt, 4) > 0.3
