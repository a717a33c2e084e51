"""The per-conversation cache report end to end (issue 10): a Chat Completions client of a Claude model names its
conversation (``prompt_cache_key`` in the body, or a ``session_id`` header), talks two turns through the gateway
to the fake Claude, and the report (the function, ``usage_report --by conversation`` and the staff page) shows
that conversation with the hit rate its second turn earned by reading the cache."""
from __future__ import annotations

import io
import json
from typing import Any

import openai
import pytest
from django.core.management import call_command
from django.test import Client

from gateway.usage import conversations, reports
from gateway.usage.amounts import percent_text
from tests.conftest import wait_for_usage
from tests.integration.test_prompt_caching import FOLLOW_UP, MODEL, QUESTION, SYSTEM

pytestmark = pytest.mark.django_db(transaction=True)

CONVERSATION = "review-3f1c9a2e-0b7d-4c55-9e61-2d8f4a7b0c13"


@pytest.fixture
def key(gateway: str, api_key_factory: Any, credential_factory: Any) -> tuple[Any, str]:
    credential_factory("claude")  # one account: its prompt cache is what the second turn reads
    return api_key_factory(models=["claude-*"])


def two_turns(client: Any, **named: Any) -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model=MODEL, messages=messages, **named)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": FOLLOW_UP}]
    client.chat.completions.create(model=MODEL, messages=messages, **named)


@pytest.mark.parametrize("how", ["prompt_cache_key", "session_id header"])
def test_a_chat_clients_conversation_shows_its_cache_hit_rate(gateway: str, key: tuple[Any, str],
                                                              django_user_model: Any, how: str) -> None:
    api_key, raw = key
    headers = {"session_id": CONVERSATION} if how != "prompt_cache_key" else {}
    named = {"extra_body": {"prompt_cache_key": CONVERSATION}} if how == "prompt_cache_key" else {}
    with openai.OpenAI(base_url=gateway + "/v1", api_key=raw, max_retries=0, default_headers=headers) as client:
        two_turns(client, **named)
    with openai.OpenAI(base_url=gateway + "/v1", api_key=raw, max_retries=0) as plain:  # names no conversation
        plain.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    turn_1, turn_2, unnamed = wait_for_usage(3, timeout=30)
    assert (turn_1.conversation, turn_2.conversation, unnamed.conversation) == (CONVERSATION, CONVERSATION, "")
    assert turn_1.cache_read_tokens == 0 and turn_2.cache_read_tokens == turn_1.cache_write_tokens > 1024

    # the report: one row for the conversation, its hit rate from both turns' prompts, the unnamed request left out
    [row] = conversations.conversations(reports.Range())
    prompt = sum(t.input_tokens + t.cache_read_tokens + t.cache_write_tokens for t in (turn_1, turn_2))
    assert (row["conversation"], row["requests"], row["key_prefix"]) == (CONVERSATION, 2, api_key.prefix)
    assert row["cache_hit_rate"] == round(turn_2.cache_read_tokens / prompt, 4) > 0.3
    assert row["models"] == MODEL

    out = io.StringIO()
    call_command("usage_report", "--by", "conversation", "--format", "json", stdout=out)
    assert [(r["conversation"], r["cache_hit_rate"]) for r in json.loads(out.getvalue())] == [
        (CONVERSATION, row["cache_hit_rate"])]

    staff = Client()
    staff.force_login(django_user_model.objects.create_superuser("lead", "", "pw"))
    page = staff.get("/admin/usage/?by=conversation&period=24h").content.decode()
    assert f'title="{CONVERSATION}"' in page
    assert f">{percent_text(row['cache_hit_rate'])}<" in page
