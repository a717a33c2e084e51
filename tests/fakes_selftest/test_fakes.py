"""The fake upstreams enforce the real upstreams' rules and speak valid SSE.

Plain httpx against a running FakeUpstreams; no Django.  If these fail, the
integration tests' verdicts on the gateway mean nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import FakeUpstreams
from tests.fakes.anthropic_rules import validate_count_tokens_request, validate_messages_request
from tests.fakes.codex_rules import validate_codex_request
from tests.fakes.signing import issue_encrypted_content, sign_thinking
from tests.fakes.tokens import CLAUDE_CLIENT_ID, CODEX_CLIENT_ID, jwt_claims

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
MODEL = "claude-sonnet-4-5-20250929"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CODEX_TOOL = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["input_schema"], "strict": False}
CLAUDE_REDIRECT = "https://platform.claude.com/oauth/code/callback"
CODEX_REDIRECT = "http://localhost:1455/auth/callback"


@pytest.fixture(scope="module")
def running() -> Iterator[FakeUpstreams]:
    with FakeUpstreams() as upstreams:
        yield upstreams


@pytest.fixture
def fakes(running: FakeUpstreams) -> Iterator[FakeUpstreams]:
    running.reset()
    yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One client for the module: building one (its SSL context) costs ~30 ms.
    with httpx.Client(timeout=5) as client:
        yield client


# --- helpers -------------------------------------------------------------------


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in text.split("\n\n"):
        lines = [line for line in chunk.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next(line[7:] for line in lines if line.startswith("event: "))
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        events.append((name, json.loads(data)))
    return events


def claude_headers(token: str, **extra: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,oauth-2025-04-20",
        **extra,
    }


def claude_body(text: str = "hello", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2048,
        "system": [{"type": "text", "text": IDENTITY}],
        "messages": [{"role": "user", "content": text}],
    }
    body.update(overrides)
    return body


@pytest.fixture
def claude(fakes: FakeUpstreams, http: httpx.Client) -> Any:
    """post(body, headers=None, path=...) -> httpx.Response with a live token."""
    token = fakes.issue_claude_tokens()["access_token"]

    def post(
        body: dict[str, Any], headers: dict[str, str] | None = None, path: str = "/v1/messages?beta=true"
    ) -> httpx.Response:
        return http.post(fakes.claude_base_url + path, json=body, headers=headers or claude_headers(token))

    post.token = token  # type: ignore[attr-defined]
    return post


def assert_claude_400(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["request_id"].startswith("req_")
    assert fragment in body["error"]["message"]


def codex_body(text: str = "hello", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-5-codex",
        "instructions": "",
        "stream": True,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "none"},
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}],
    }
    body.update(overrides)
    return body


@pytest.fixture
def codex(fakes: FakeUpstreams, http: httpx.Client) -> Any:
    tokens = fakes.issue_codex_tokens(account_id="acct-1")

    def post(body: dict[str, Any], headers: dict[str, str] | None = None, path: str = "/responses") -> httpx.Response:
        default = {"authorization": f"Bearer {tokens['access_token']}", "chatgpt-account-id": "acct-1"}
        return http.post(fakes.codex_base_url + path, json=body, headers=headers or default)

    post.token = tokens["access_token"]  # type: ignore[attr-defined]
    return post


def assert_detail(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 400, response.text
    assert detail in response.json()["detail"]


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 32).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# --- Anthropic: success shapes --------------------------------------------------


def test_claude_echoes_with_usage_and_rate_limit_headers(claude: Any, fakes: FakeUpstreams) -> None:
    response = claude(claude_body("hello there"))
    assert response.status_code == 200
    message = response.json()
    assert message["content"] == [{"type": "text", "text": "Echo: hello there"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["cache_read_input_tokens"] == 0
    assert response.headers["anthropic-ratelimit-unified-status"] == "allowed"
    for window in ("5h", "7d"):
        assert response.headers[f"anthropic-ratelimit-unified-{window}-utilization"]
        assert response.headers[f"anthropic-ratelimit-unified-{window}-reset"].isdigit()
    assert response.headers["request-id"].startswith("req_")
    assert fakes.last_usage("claude") == message["usage"]
    recorded = fakes.requests("claude")[-1]
    assert recorded.query == {"beta": "true"} and recorded.status == 200
    assert "<redacted>" in repr(recorded) and claude.token not in repr(recorded)


def test_claude_stream_follows_the_exact_event_order(claude: Any) -> None:
    body = claude_body(
        "use the tool", stream=True, thinking={"type": "enabled", "budget_tokens": 1024}, tools=[WEATHER_TOOL]
    )
    response = claude(body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert all(name == data["type"] for name, data in events)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert events[0][1]["message"]["usage"]["output_tokens"] == 1
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    thinking = [d for d in deltas if d["type"] == "thinking_delta"]
    signatures = [d for d in deltas if d["type"] == "signature_delta"]
    fragments = [d["partial_json"] for d in deltas if d["type"] == "input_json_delta"]
    assert len(thinking) >= 2 and len(signatures) == 1 and len(fragments) >= 2
    assert json.loads("".join(fragments)) == {"city": "Paris"}
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"]["output_tokens"] == 11 and "input_tokens" in final["usage"]


def test_claude_text_streams_in_several_deltas(claude: Any) -> None:
    events = parse_sse(claude(claude_body("stream me", stream=True)).text)
    texts = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert len(texts) >= 2 and "".join(texts) == "Echo: stream me"


def test_claude_two_tools_give_parallel_calls_and_tool_results_get_answered(claude: Any) -> None:
    calls = [b for b in claude(claude_body("two tools please", tools=[WEATHER_TOOL])).json()["content"]]
    assert [c["input"]["city"] for c in calls] == ["Paris", "London"]
    assert calls[0]["id"] != calls[1]["id"]
    single = claude(
        claude_body("two tools", tools=[WEATHER_TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    )
    assert len(single.json()["content"]) == 1
    history = [
        {"role": "user", "content": "use the tool"},
        {"role": "assistant", "content": [calls[0]]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0]["id"], "content": "18C"}]},
    ]
    answer = claude(claude_body(messages=history, tools=[WEATHER_TOOL])).json()
    assert answer["content"][0]["text"] == "Tool said: 18C"


def test_claude_never_calls_a_deferred_tool(claude: Any) -> None:
    # Deferred tools stay out of the model's view until tool search loads them (Claude Code 2.1.332
    # offers a DeferredToolPlaceholder first): the first tool called is the first one not deferred.
    placeholder = {"name": "DeferredToolPlaceholder", "description": "never call this tool",
                   "input_schema": {"type": "object", "properties": {}}, "defer_loading": True}
    calls = claude(claude_body("use the tool", tools=[placeholder, WEATHER_TOOL])).json()["content"]
    assert [c["name"] for c in calls if c["type"] == "tool_use"] == ["get_weather"]
    only_deferred = claude(claude_body("use the tool", tools=[placeholder])).json()["content"]
    assert [c["type"] for c in only_deferred] == ["text"]


MARK = {"type": "ephemeral"}
LONG_SYSTEM = "You review code carefully and answer in short sentences. " * 100  # ~1,400 tokens: cacheable


def cached_conversation(*turns: str, mark_every_turn: bool = False) -> dict[str, Any]:
    """A long marked system prompt and alternating user/assistant turns, the last one marked."""
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": [{"type": "text", "text": t}]}
                for i, t in enumerate(turns)]
    for i, message in enumerate(messages):
        if mark_every_turn or i == len(messages) - 1:
            message["content"][-1]["cache_control"] = MARK
    system = [{"type": "text", "text": IDENTITY}, {"type": "text", "text": LONG_SYSTEM, "cache_control": MARK}]
    return claude_body(system=system, messages=messages)


def split(usage: dict[str, int]) -> tuple[int, int, int]:
    return usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"], usage["input_tokens"]


def test_claude_writes_a_marked_prefix_then_reads_it_on_the_next_turn(claude: Any) -> None:
    first = cached_conversation("What does main.py do?")
    total_1 = claude({k: v for k, v in first.items() if k != "max_tokens"}, path="/v1/messages/count_tokens").json()
    read, written, rest = split(claude(first).json()["usage"])
    assert read == 0 and written > 1024 and rest == 0  # nothing after the last breakpoint
    assert read + written + rest == total_1["input_tokens"]

    second = cached_conversation("What does main.py do?", "It prints hello.", "And test.py?")
    read2, written2, rest2 = split(claude(second).json()["usage"])
    assert read2 == written  # exactly the prefix the first turn wrote
    assert written2 > 0 and rest2 == 0
    assert split(claude(second).json()["usage"]) == (read2 + written2, 0, 0)  # the same request again: all read


def test_claude_streams_the_same_cache_usage(claude: Any) -> None:
    body = cached_conversation("Stream it")
    claude(body)
    events = parse_sse(claude({**body, "stream": True}).text)
    start = next(d for n, d in events if n == "message_start")["message"]["usage"]
    delta = next(d for n, d in events if n == "message_delta")["usage"]
    assert start["cache_read_input_tokens"] > 1024 and start["cache_creation_input_tokens"] == 0
    assert delta.get("cache_read_input_tokens", start["cache_read_input_tokens"]) == start["cache_read_input_tokens"]


def test_claude_caches_nothing_below_the_minimum_or_without_marks(claude: Any) -> None:
    short = claude_body(system=[{"type": "text", "text": IDENTITY, "cache_control": MARK}])
    for _ in range(2):
        assert split(claude(short).json()["usage"])[:2] == (0, 0)
    unmarked = cached_conversation("q")
    unmarked["system"][1].pop("cache_control")
    unmarked["messages"][0]["content"][0].pop("cache_control")
    for _ in range(2):
        usage = claude(unmarked).json()["usage"]
        assert split(usage)[:2] == (0, 0) and usage["input_tokens"] > 1024


def test_claude_prompt_caches_are_per_account(fakes: FakeUpstreams, claude: Any, http: httpx.Client) -> None:
    body = cached_conversation("Shared prompt")
    claude(body)
    other = fakes.issue_claude_tokens(email="other@example.com")["access_token"]
    usage = http.post(fakes.claude_base_url + "/v1/messages", json=body, headers=claude_headers(other)).json()["usage"]
    assert usage["cache_read_input_tokens"] == 0 and usage["cache_creation_input_tokens"] > 0
    assert claude(body).json()["usage"]["cache_read_input_tokens"] > 0


def test_claude_looks_back_twenty_blocks_from_a_breakpoint(claude: Any) -> None:
    """A turn that only marks its end still reads what the last one wrote, unless more than 20 blocks came since."""
    claude(cached_conversation("x"))
    system_only = split(claude(cached_conversation("y")).json()["usage"])[0]  # read: the marked system prefix
    assert system_only > 1024
    claude(cached_conversation("q0"))
    near = ["q0", *[f"t{i}" for i in range(1, 21)]]  # 20 new blocks
    assert split(claude(cached_conversation(*near)).json()["usage"])[0] > system_only
    claude(cached_conversation("p0"))
    far = ["p0", *[f"t{i}" for i in range(1, 22)]]  # 21 new blocks: past the look-back
    assert split(claude(cached_conversation(*far)).json()["usage"])[0] == system_only
    claude(cached_conversation("r0"))
    body = cached_conversation("r0", *[f"t{i}" for i in range(1, 22)])
    body["messages"][0]["content"][0]["cache_control"] = MARK  # an explicit breakpoint where the last turn ended
    assert split(claude(body).json()["usage"])[0] > system_only


def test_claude_refuses_more_than_four_breakpoints(claude: Any) -> None:
    body = cached_conversation("a", "b", "c", "d", mark_every_turn=True)
    assert_claude_400(claude(body), "A maximum of 4 blocks with cache_control may be provided. Found 5.")


def test_claude_count_tokens_and_models(claude: Any) -> None:
    body = claude_body("count me")
    counted = claude({k: v for k, v in body.items() if k != "max_tokens"}, path="/v1/messages/count_tokens?beta=true")
    assert counted.json()["input_tokens"] == claude(body).json()["usage"]["input_tokens"]
    assert_claude_400(claude(body, path="/v1/messages/count_tokens"), "max_tokens: Extra inputs")


def test_claude_models_list(fakes: FakeUpstreams, claude: Any, http: httpx.Client) -> None:
    listed = http.get(fakes.claude_base_url + "/v1/models", headers=claude_headers(claude.token)).json()
    assert listed["data"][0]["type"] == "model" and listed["has_more"] is False


def test_claude_profile_names_the_account_and_plan(fakes: FakeUpstreams, http: httpx.Client) -> None:
    token = fakes.issue_claude_tokens(email="pro@example.com", plan="pro")["access_token"]
    url = fakes.claude_base_url + "/api/oauth/profile"
    profile = http.get(url, headers={"authorization": f"Bearer {token}"}).json()
    assert profile["account"]["email"] == "pro@example.com"
    assert (profile["account"]["has_claude_pro"], profile["account"]["has_claude_max"]) == (True, False)
    assert profile["organization"]["organization_type"] == "claude_pro"
    assert http.get(url, headers={"authorization": "Bearer sk-ant-oat01-unknown"}).status_code == 401
    codex = fakes.issue_codex_tokens()["access_token"]
    assert http.get(url, headers={"authorization": f"Bearer {codex}"}).status_code == 401


# --- Anthropic: auth -------------------------------------------------------------


def test_claude_auth_rules(claude: Any, fakes: FakeUpstreams) -> None:
    no_beta = claude(claude_body(), headers=claude_headers(claude.token, **{"anthropic-beta": "claude-code-20250219"}))
    assert no_beta.status_code == 401
    assert no_beta.json()["error"]["message"] == "OAuth authentication is currently not supported."
    with_key = claude(claude_body(), headers=claude_headers(claude.token, **{"x-api-key": "sk-ant-api03-x"}))
    assert with_key.status_code == 401
    headers = claude_headers(claude.token)
    del headers["anthropic-version"]
    assert_claude_400(claude(claude_body(), headers=headers), "anthropic-version")
    unknown = claude(claude_body(), headers=claude_headers("sk-ant-oat01-made-up"))
    assert unknown.status_code == 401 and "OAuth token has expired" in unknown.json()["error"]["message"]
    fakes.expire_access_token(claude.token)
    expired = claude(claude_body())
    assert expired.status_code == 401 and expired.json()["error"]["type"] == "authentication_error"


def test_claude_requires_the_claude_code_identity(claude: Any) -> None:
    assert_claude_400(claude(claude_body(system="Be terse.")), "only authorized for use with Claude Code")
    assert_claude_400(claude(claude_body(system=None)), "only authorized for use with Claude Code")
    billing = {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.3.abc; cc_entrypoint=cli;"}
    agent = {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."}
    assert claude(claude_body(system=[billing, agent, {"type": "text", "text": "Be terse."}])).status_code == 200


# --- Anthropic: body rules ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "greater than or equal to 1"),
        ({"messages": []}, "at least one message"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        ({"messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]}, "first message"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "  "}]}]}, "non-empty"),
        ({"messages": [{"role": "user", "content": []}]}, "non-empty content"),
        (
            {
                "messages": [
                    {"role": "user", "content": ""},
                    {"role": "assistant", "content": "x"},
                    {"role": "user", "content": "y"},
                ]
            },
            "non-empty",
        ),
        ({"temperature": 0.5, "top_p": 0.9}, "cannot both be specified"),
        ({"stream_options": {"include_usage": True}}, "Extra inputs are not permitted"),
        ({"tools": [{"name": "x"}]}, "input_schema"),
        ({"tools": [{"type": "function", "function": {"name": "x", "parameters": {}}}]}, "tools.0"),
        ({"tools": [{"name": "x", "input_schema": {"type": "string"}}]}, "input_schema.type"),
        ({"messages": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}, "Input tag 'input_text'"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AAAA"}}
                        ],
                    }
                ]
            },
            "media_type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": "not base64!"},
                            }
                        ],
                    }
                ]
            },
            "base64",
        ),
        ({"system": [{"type": "text", "text": IDENTITY, "cache_control": {"type": "ephemeral"}}] * 5}, "maximum of 4"),
        # Shapes no check foresees still get the API's 400, never a crash (found by fuzzing the gateway).
        ({"messages": [{"role": [], "content": "hi"}]}, "valid request body"),
    ],
)
def test_claude_rejects_malformed_bodies(claude: Any, overrides: dict[str, Any], fragment: str) -> None:
    body = claude_body(**overrides)
    if overrides.get("max_tokens", 1) is None:
        del body["max_tokens"]
    assert_claude_400(claude(body), fragment)


def test_claude_accepts_system_messages_and_final_prefill(claude: Any) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Per-turn control."},
        {"role": "assistant", "content": [{"type": "text", "text": ""}]},
    ]
    assert claude(claude_body(messages=messages)).status_code == 200


def _tool_history(
    first_assistant_blocks: list[dict[str, Any]], result_blocks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "use the tool"},
        {"role": "assistant", "content": first_assistant_blocks},
        {"role": "user", "content": result_blocks},
    ]


TOOL_USE = {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
TOOL_RESULT = {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C"}


@pytest.mark.parametrize(
    ("assistant", "user", "fragment"),
    [
        ([TOOL_USE], [{"type": "text", "text": "no result"}], "without `tool_result` blocks immediately after"),
        ([TOOL_USE], [{"type": "text", "text": "first"}, TOOL_RESULT], "must come first"),
        ([{"type": "text", "text": "no call"}], [TOOL_RESULT], "unexpected `tool_use_id`"),
        ([dict(TOOL_USE, input='{"city":"Paris"}')], [TOOL_RESULT], "valid dictionary"),
        ([dict(TOOL_USE, id="toolu.01A")], [dict(TOOL_RESULT, tool_use_id="toolu.01A")], "String should match pattern"),
    ],
)
def test_claude_enforces_tool_pairing(
    claude: Any, assistant: list[dict[str, Any]], user: list[dict[str, Any]], fragment: str
) -> None:
    assert_claude_400(claude(claude_body(messages=_tool_history(assistant, user), tools=[WEATHER_TOOL])), fragment)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "must be greater than `thinking.budget_tokens`"),
        ({"temperature": 0.5}, "`temperature` may only be set to 1"),
        ({"top_k": 5}, "`top_k` is not available"),
        ({"top_p": 0.5}, "`top_p` must be greater than or equal to 0.95"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "any"}}, "forces tool use"),
        (
            {"tools": [WEATHER_TOOL], "messages": _tool_history([TOOL_USE], [TOOL_RESULT])},
            "Expected `thinking` or `redacted_thinking`",
        ),
    ],
)
def test_claude_enforces_thinking_constraints(claude: Any, overrides: dict[str, Any], fragment: str) -> None:
    body = claude_body(**{"thinking": {"type": "adaptive"}, "max_tokens": 2048, **overrides})
    assert_claude_400(claude(body), fragment)


def test_claude_thinking_round_trip_needs_the_fakes_own_signature(claude: Any) -> None:
    first = claude(claude_body("use the tool", thinking={"type": "adaptive"}, tools=[WEATHER_TOOL])).json()
    thinking, call = first["content"]
    assert thinking["signature"].startswith("sig_")
    result = {"type": "tool_result", "tool_use_id": call["id"], "content": "18C"}
    ok = claude(
        claude_body(
            thinking={"type": "adaptive"}, tools=[WEATHER_TOOL], messages=_tool_history(first["content"], [result])
        )
    )
    assert ok.status_code == 200 and ok.json()["content"][1]["text"] == "Tool said: 18C"
    for forged in (issue_encrypted_content("x"), sign_thinking("other text")):
        blocks = [dict(thinking, signature=forged), call]
        body = claude_body(
            thinking={"type": "adaptive"}, tools=[WEATHER_TOOL], messages=_tool_history(blocks, [result])
        )
        assert_claude_400(claude(body), "Invalid `signature` in `thinking` block")


# --- Anthropic: faults -------------------------------------------------------------


def test_claude_rate_limit_fault_fires_once(claude: Any, fakes: FakeUpstreams) -> None:
    fakes.add_fault("claude", "rate_limited", retry_after=7, unified_reset=1900000000)
    limited = claude(claude_body())
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "rate_limit_error"
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert limited.headers["anthropic-ratelimit-unified-reset"] == "1900000000"
    assert claude(claude_body()).status_code == 200
    assert fakes.counter("claude.fault.rate_limited") == 1 and fakes.pending_faults() == 0


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("overloaded", 529, "overloaded_error"),
        ("server_error", 500, "api_error"),
        ("expired", 401, "authentication_error"),
    ],
)
def test_claude_error_faults(claude: Any, fakes: FakeUpstreams, kind: str, status: int, error_type: str) -> None:
    fakes.add_fault("claude", kind)
    response = claude(claude_body())
    assert response.status_code == status and response.json()["error"]["type"] == error_type


def test_claude_fault_scoped_to_a_token_spares_others(claude: Any, fakes: FakeUpstreams) -> None:
    other = fakes.issue_claude_tokens(email="b@example.com")["access_token"]
    fakes.add_fault("claude", "overloaded", token=other, times=2)
    assert claude(claude_body()).status_code == 200
    assert claude(claude_body(), headers=claude_headers(other)).status_code == 529
    assert fakes.pending_faults("claude") == 1


def test_claude_mid_stream_error_and_drop(claude: Any, fakes: FakeUpstreams) -> None:
    fakes.add_fault("claude", "mid_stream_error")
    events = parse_sse(claude(claude_body(stream=True)).text)
    assert events[0][0] == "message_start"
    assert events[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    fakes.add_fault("claude", "drop_mid_stream")
    with pytest.raises(httpx.RemoteProtocolError):
        claude(claude_body(stream=True))


def test_claude_slow_stream_notices_a_client_that_hangs_up(
    fakes: FakeUpstreams, claude: Any, http: httpx.Client
) -> None:
    fakes.add_fault("claude", "slow", delay=0.3)
    url = fakes.claude_base_url + "/v1/messages"
    with http.stream("POST", url, json=claude_body(stream=True), headers=claude_headers(claude.token)) as response:
        lines = response.iter_lines()  # keep a reference: a dropped generator closes the connection
        assert next(lines) == "event: message_start"
        assert fakes.open_streams("claude") == 1
    assert fakes.wait_for(lambda: fakes.cancelled_streams("claude") == 1)
    assert fakes.wait_for(lambda: fakes.open_streams("claude") == 0)


# --- Codex ---------------------------------------------------------------------------


def test_codex_stream_is_numbered_and_complete(codex: Any, fakes: FakeUpstreams) -> None:
    body = codex_body("hi", reasoning={"effort": "medium", "summary": "auto"}, prompt_cache_key="k1")
    response = codex(body)
    assert response.status_code == 200 and response.headers["x-codex-plan-type"] == "plus"
    assert response.headers["x-codex-primary-window-minutes"] == "300"
    assert response.headers["x-codex-secondary-window-minutes"] == "10080"
    events = parse_sse(response.text)
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    names = [n for n, _ in events]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.reasoning_summary_part.added" in names and names[-1] == "response.completed"
    assert len([n for n in names if n == "response.output_text.delta"]) >= 2
    final = events[-1][1]["response"]
    reasoning, message = final["output"]
    assert reasoning["encrypted_content"].startswith("enc_")
    assert message["content"][0]["text"] == "Echo: hi"
    usage = final["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == min(64, usage["input_tokens"])
    assert usage["output_tokens_details"]["reasoning_tokens"] == 5
    assert fakes.last_usage("codex") == usage


def test_codex_function_calls_stream_arguments_in_pieces(codex: Any) -> None:
    events = parse_sse(codex(codex_body("two tools", tools=[CODEX_TOOL])).text)
    deltas = [d for n, d in events if n == "response.function_call_arguments.delta"]
    calls = [i for i in events[-1][1]["response"]["output"] if i["type"] == "function_call"]
    assert len(calls) == 2 and calls[0]["call_id"] != calls[1]["call_id"]
    joined = "".join(d["delta"] for d in deltas if d["item_id"] == calls[0]["id"])
    assert len(deltas) >= 4 and json.loads(joined) == {"city": "Paris"}
    history = codex_body("use the tool", tools=[CODEX_TOOL])["input"] + [
        {
            "type": "function_call",
            "call_id": calls[0]["call_id"],
            "name": "get_weather",
            "arguments": calls[0]["arguments"],
        },
        {"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "18C"},
    ]
    answer = parse_sse(codex(codex_body(input=history, tools=[CODEX_TOOL])).text)[-1][1]["response"]
    assert answer["output"][0]["content"][0]["text"] == "Tool said: 18C"


def test_codex_custom_tools_are_called_with_a_raw_input_string(codex: Any) -> None:
    patch_tool = {"type": "custom", "name": "apply_patch", "description": "Patch files"}
    events = parse_sse(codex(codex_body("use the tool", tools=[patch_tool, CODEX_TOOL])).text)
    [call] = [i for i in events[-1][1]["response"]["output"] if i["type"] != "reasoning"]
    assert call["type"] == "custom_tool_call" and call["name"] == "apply_patch" and call["id"].startswith("ctc_")
    names = [n for n, d in events if d.get("item_id") == call["id"] or d.get("item", {}).get("id") == call["id"]]
    assert names[0] == "response.output_item.added" and names[-1] == "response.output_item.done"
    assert names[-2] == "response.custom_tool_call_input.done" and names.count("response.custom_tool_call_input.delta") >= 2
    joined = "".join(d["delta"] for n, d in events if n == "response.custom_tool_call_input.delta")
    assert joined == call["input"] and call["input"].startswith("*** Begin Patch")
    history = codex_body("use the tool")["input"] + [
        {"type": "custom_tool_call", "call_id": call["call_id"], "name": "apply_patch", "input": call["input"]},
        {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "Done"},
    ]
    answer = parse_sse(codex(codex_body(input=history, tools=[patch_tool])).text)[-1][1]["response"]
    assert answer["output"][-1]["content"][0]["text"] == "Tool said: Done"


def test_codex_compact_returns_a_compaction_item_the_backend_accepts_later(codex: Any) -> None:
    history = codex_body("List the files")["input"]
    compact = {"model": "gpt-5.5", "input": history, "instructions": "Be brief.", "tools": []}
    for refused in ("stream", "store", "include"):
        value = {"stream": True, "store": False, "include": []}[refused]
        assert_detail(codex({**compact, refused: value}, path="/responses/compact"), f"Unsupported parameter: {refused}")
    response = codex(compact, path="/responses/compact")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    output = response.json()["output"]
    assert [i["type"] for i in output] == ["message", "compaction"] and output[1]["encrypted_content"]
    follow_up = [{k: v for k, v in i.items() if k != "id"} for i in output] + codex_body("Go on")["input"]
    assert codex(codex_body(input=follow_up)).status_code == 200
    forged = [{"type": "compaction", "encrypted_content": "cmp_0000"}] + codex_body("Go on")["input"]
    assert_detail(codex(codex_body(input=forged)), "could not be verified")


def test_codex_auth_rules(codex: Any, fakes: FakeUpstreams) -> None:
    assert_detail(codex(codex_body(), headers={"authorization": f"Bearer {codex.token}"}), "ChatGPT-Account-ID")
    wrong_account = codex(
        codex_body(), headers={"authorization": f"Bearer {codex.token}", "chatgpt-account-id": "acct-2"}
    )
    assert wrong_account.status_code == 401 and wrong_account.json()["error"]["code"] == "token_expired"
    fakes.expire_access_token(codex.token)
    assert codex(codex_body()).status_code == 401


REASONING_SIG = {"type": "reasoning", "summary": [], "encrypted_content": "sig_" + "0" * 40}


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda b: b.pop("instructions"), "Instructions are required"),
        (lambda b: b.update(stream=False), "Stream must be set to true"),
        (lambda b: b.pop("store"), "Store must be set to false"),
        (lambda b: b.update(max_output_tokens=100), "Unsupported parameter: max_output_tokens"),
        (lambda b: b.update(temperature=0.2), "Unsupported parameter: temperature"),
        (lambda b: b.update(previous_response_id="resp_1"), "Unsupported parameter: previous_response_id"),
        (lambda b: b.update(model="claude-sonnet-4-5"), "not supported when using Codex"),
        (lambda b: b.update(input="hi"), "Input must be a list"),
        (lambda b: b["input"].insert(0, {"type": "message", "role": "system", "content": "x"}), "'system'"),
        (
            lambda b: b["input"].append(
                {"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "x"}]}
            ),
            "'input_text'",
        ),
        (
            lambda b: b["input"].append({"type": "function_call_output", "call_id": "call_9", "output": "x"}),
            "No tool call found for function call output with call_id call_9",
        ),
        (
            lambda b: b["input"].append({"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"}),
            "No tool output found",
        ),
        (lambda b: b["input"].append(REASONING_SIG), "could not be verified"),
        (lambda b: b.update(tools=[dict(CODEX_TOOL, name="n" * 65)]), "maximum length 64"),
        (
            lambda b: b.update(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]),
            "tools[0].name",
        ),
    ],
)
def test_codex_rejects_malformed_bodies(codex: Any, change: Any, detail: str) -> None:
    body = codex_body()
    change(body)
    assert_detail(codex(body), detail)


def test_codex_accepts_its_own_reasoning_and_namespaces(codex: Any) -> None:
    body = codex_body(reasoning={"effort": "low"})
    item = parse_sse(codex(body).text)[-1][1]["response"]["output"][0]
    assert item["type"] == "reasoning" and item["summary"] == []  # no summary was asked for
    body["input"] += [item, {"type": "message", "role": "user", "content": "again"}]
    body["tools"] = [{"type": "namespace", "name": "mcp", "tools": [CODEX_TOOL]}, {"type": "web_search"}]
    assert codex(body).status_code == 200


def test_codex_usage_limit_fault(codex: Any, fakes: FakeUpstreams) -> None:
    fakes.add_fault("codex", "usage_limit", resets_in_seconds=120)
    limited = codex(codex_body())
    error = limited.json()["error"]
    assert limited.status_code == 429 and error["type"] == "usage_limit_reached"
    assert error["resets_in_seconds"] == 120 and error["resets_at"] > 0
    assert limited.headers["x-codex-primary-used-percent"] == "100"
    assert codex(codex_body()).status_code == 200


@pytest.mark.parametrize(
    ("kind", "opts", "status", "check"),
    [
        ("usage_not_included", {}, 429, lambda b: b["error"]["type"] == "usage_not_included"),
        ("rate_limited", {"retry_after": 3}, 429, lambda b: b["error"]["code"] == "rate_limit_exceeded"),
        (
            "bad_request",
            {"msg": "Instructions are not valid"},
            400,
            lambda b: b == {"detail": "Instructions are not valid"},
        ),
        ("server_error", {}, 500, lambda b: b["error"]["type"] == "server_error"),
        ("expired", {}, 401, lambda b: b["error"]["code"] == "token_expired"),
    ],
)
def test_codex_error_faults(
    codex: Any, fakes: FakeUpstreams, kind: str, opts: dict[str, Any], status: int, check: Any
) -> None:
    fakes.add_fault("codex", kind, **opts)
    response = codex(codex_body())
    assert response.status_code == status and check(response.json())


def test_codex_stream_faults(codex: Any, fakes: FakeUpstreams) -> None:
    fakes.add_fault("codex", "empty_output")
    events = parse_sse(codex(codex_body()).text)
    assert events[-1][1]["response"]["output"] == []
    assert any(n == "response.output_item.done" for n, _ in events)
    fakes.add_fault("codex", "failed", code="context_length_exceeded")
    last = parse_sse(codex(codex_body()).text)[-1][1]
    assert last["type"] == "response.failed" and last["response"]["error"]["code"] == "context_length_exceeded"
    fakes.add_fault("codex", "drop_mid_stream")
    with pytest.raises(httpx.RemoteProtocolError):
        codex(codex_body())


# --- token endpoints ---------------------------------------------------------------


def test_claude_token_exchange_and_rotation(fakes: FakeUpstreams, http: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = fakes.authorize_claude(challenge, "st", CLAUDE_REDIRECT, email="me@example.com")
    grant = {
        "grant_type": "authorization_code",
        "code": code,
        "state": "st",
        "client_id": CLAUDE_CLIENT_ID,
        "redirect_uri": CLAUDE_REDIRECT,
        "code_verifier": verifier,
    }
    assert http.post(fakes.claude_token_url, data=grant).status_code == 400  # form body
    assert http.post(fakes.claude_token_url, json=dict(grant, code_verifier="wrong")).json()["error"] == "invalid_grant"
    assert http.post(fakes.claude_token_url, json=dict(grant, redirect_uri="http://localhost/cb")).status_code == 400
    tokens = http.post(fakes.claude_token_url, json=grant).json()
    assert tokens["access_token"].startswith("sk-ant-oat01-") and tokens["refresh_token"].startswith("sk-ant-ort01-")
    assert tokens["account"]["email_address"] == "me@example.com" and tokens["expires_in"] == 28800
    assert http.post(fakes.claude_token_url, json=grant).status_code == 400  # codes are single-use
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": grant["client_id"]}
    rotated = http.post(fakes.claude_token_url, json=refresh).json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    reused = http.post(fakes.claude_token_url, json=refresh)
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "Refresh token not found or invalid"}
    messages = http.post(
        fakes.claude_base_url + "/v1/messages", json=claude_body(), headers=claude_headers(rotated["access_token"])
    )
    assert messages.status_code == 200
    assert fakes.counter("claude_token.refresh_token") == 2 and len(fakes.token_requests("claude")) == 7


def test_codex_token_exchange_and_rotation(fakes: FakeUpstreams, http: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = fakes.authorize_codex(challenge, "st", CODEX_REDIRECT, account_id="acct-9", plan="pro")
    grant = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CODEX_CLIENT_ID,
        "redirect_uri": CODEX_REDIRECT,
        "code_verifier": verifier,
    }
    assert http.post(fakes.codex_token_url, json=grant).status_code == 400  # exchange is form-only
    tokens = http.post(fakes.codex_token_url, data=grant).json()
    claims = jwt_claims(tokens["id_token"])
    assert claims["https://api.openai.com/auth"]["chatgpt_account_id"] == "acct-9"
    assert claims["https://api.openai.com/auth"]["chatgpt_plan_type"] == "pro" and claims["email"]
    assert jwt_claims(tokens["access_token"])["exp"] > 0
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": grant["client_id"]}
    rotated = http.post(fakes.codex_token_url, json=refresh).json()
    reused = http.post(fakes.codex_token_url, data=refresh)
    assert reused.status_code == 401 and reused.json()["error"]["code"] == "refresh_token_reused"
    again = http.post(fakes.codex_token_url, data=dict(refresh, refresh_token=rotated["refresh_token"]))
    assert again.status_code == 200  # form refresh works too
    unknown = http.post(fakes.codex_token_url, json=dict(refresh, refresh_token="rt_nope"))
    assert unknown.json()["error"]["code"] == "refresh_token_invalidated"


def test_token_faults(fakes: FakeUpstreams, http: httpx.Client) -> None:
    tokens = fakes.issue_claude_tokens()
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": CLAUDE_CLIENT_ID,
    }
    fakes.add_fault(
        "claude_token", "token_error", status=429, body={"error": "rate_limited"}, headers={"retry-after": "5"}
    )
    limited = http.post(fakes.claude_token_url, json=refresh)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "5"
    fakes.add_fault("claude_token", "token_slow", delay=0.05)
    assert http.post(fakes.claude_token_url, json=refresh).status_code == 200
    assert fakes.counter("claude_token.fault.token_slow") == 1


# --- control API ---------------------------------------------------------------------


def test_reset_keeps_tokens_and_unknown_faults_raise(claude: Any, fakes: FakeUpstreams) -> None:
    fakes.add_fault("claude", "overloaded")
    fakes.reset()
    assert fakes.requests("claude") == [] and fakes.pending_faults() == 0
    assert claude(claude_body()).status_code == 200
    with pytest.raises(ValueError):
        fakes.add_fault("claude", "usage_limit")
    with pytest.raises(ValueError):
        fakes.add_fault("gemini", "expired")


# --- the pure rule functions -----------------------------------------------------------


def test_rule_functions_work_on_plain_dicts() -> None:
    headers = claude_headers("sk-ant-oat01-anything")  # token validity is the server's business
    assert validate_messages_request(headers, claude_body()) is None
    status, error = validate_messages_request(headers, claude_body(max_tokens="many")) or (0, {})
    assert status == 400 and error["error"]["message"] == "max_tokens: Input should be a valid integer"
    count_body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert validate_count_tokens_request(headers, count_body) is None
    codex_headers = {"Authorization": "Bearer x", "ChatGPT-Account-ID": "acct-1"}
    assert validate_codex_request(codex_headers, codex_body()) is None
    assert validate_codex_request({"Authorization": "Bearer x"}, codex_body()) == (
        400,
        {"detail": "Missing ChatGPT-Account-ID header"},
    )


# --- subscription usage endpoints (PROTOCOLS.md §4.8, §5.10) ----------------------


def test_claude_usage_reports_the_accounts_own_windows(fakes: FakeUpstreams, http: httpx.Client) -> None:
    tokens = fakes.issue_claude_tokens(email="busy@example.com")
    other = fakes.issue_claude_tokens(email="idle@example.com")["access_token"]
    fakes.set_account_utilization("claude", tokens["account"]["uuid"], 0.97, 0.40, scoped={"sonnet": 0.56},
                                  five_hour_reset=1_900_000_000)
    headers = {"authorization": f"Bearer {tokens['access_token']}", "anthropic-beta": "oauth-2025-04-20"}
    busy = http.get(fakes.claude_usage_url, headers=headers)
    assert busy.status_code == 200, busy.text
    body = busy.json()
    assert body["five_hour"] == {"utilization": 97.0, "resets_at": "2030-03-17T17:46:40+00:00"}
    assert body["seven_day"]["utilization"] == 40.0 and body["seven_day_sonnet"]["utilization"] == 56.0
    assert body["seven_day_opus"] is None
    scoped = [item for item in body["limits"] if item["kind"] == "weekly_scoped"]
    assert scoped[0]["scope"]["model"]["display_name"] == "Sonnet" and scoped[0]["percent"] == 56.0
    idle = http.get(fakes.claude_usage_url, headers={**headers, "authorization": f"Bearer {other}"}).json()
    assert idle["five_hour"]["utilization"] == 12.0 and "seven_day_sonnet" not in idle
    # The same account's message headers agree with its usage answer.
    message = http.post(fakes.claude_base_url + "/v1/messages", json=claude_body(),
                        headers=claude_headers(tokens["access_token"]))
    assert message.headers["anthropic-ratelimit-unified-5h-utilization"] == "0.97"
    assert message.headers["anthropic-ratelimit-unified-5h-reset"] == "1900000000"
    assert [r.status for r in fakes.requests("claude_usage")] == [200, 200]
    assert not [r for r in fakes.requests("claude") if r.path == "/api/oauth/usage"]


def test_claude_usage_checks_auth_as_upstream(fakes: FakeUpstreams, http: httpx.Client) -> None:
    token = fakes.issue_claude_tokens()["access_token"]
    no_beta = http.get(fakes.claude_usage_url, headers={"authorization": f"Bearer {token}"})
    assert no_beta.status_code == 401 and no_beta.json()["error"]["message"] == "OAuth authentication is currently not supported."
    beta = {"anthropic-beta": "oauth-2025-04-20"}
    assert http.get(fakes.claude_usage_url, headers=beta).status_code == 401
    codex = fakes.issue_codex_tokens()["access_token"]
    assert http.get(fakes.claude_usage_url, headers={**beta, "authorization": f"Bearer {codex}"}).status_code == 401
    fakes.expire_access_token(token)
    expired = http.get(fakes.claude_usage_url, headers={**beta, "authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and "OAuth token has expired" in expired.json()["error"]["message"]


def test_usage_faults_fire_on_the_usage_endpoints_only(fakes: FakeUpstreams, http: httpx.Client,
                                                       claude: Any) -> None:
    headers = {"authorization": f"Bearer {claude.token}", "anthropic-beta": "oauth-2025-04-20"}
    fakes.add_fault("claude_usage", "rate_limited", retry_after=60)
    fakes.add_fault("claude_usage", "not_json")
    assert claude(claude_body()).status_code == 200  # a message never takes a usage fault
    limited = http.get(fakes.claude_usage_url, headers=headers)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
    garbage = http.get(fakes.claude_usage_url, headers=headers)
    assert garbage.status_code == 200 and garbage.headers["content-type"].startswith("text/html")
    assert http.get(fakes.claude_usage_url, headers=headers).json()["five_hour"]["utilization"] == 12.0
    assert fakes.counter("claude_usage.fault.rate_limited") == 1
    with pytest.raises(ValueError):
        fakes.add_fault("claude_usage", "mid_stream_error")


def test_codex_usage_names_windows_by_length_and_checks_the_account(fakes: FakeUpstreams,
                                                                   http: httpx.Client) -> None:
    token = fakes.issue_codex_tokens(account_id="acct-9", plan="pro")["access_token"]
    fakes.set_account_utilization("codex", "acct-9", 0.42, 0.87)
    headers = {"authorization": f"Bearer {token}", "chatgpt-account-id": "acct-9"}
    body = http.get(fakes.codex_usage_url, headers=headers).json()
    assert body["plan_type"] == "pro"
    primary, secondary = body["rate_limit"]["primary_window"], body["rate_limit"]["secondary_window"]
    assert (primary["used_percent"], primary["limit_window_seconds"]) == (42.0, 18000)
    assert (secondary["used_percent"], secondary["limit_window_seconds"]) == (87.0, 604800)
    assert primary["reset_at"] < secondary["reset_at"]
    fakes.set_account_utilization("codex", "acct-9", 0.0, 0.30, weekly_only=True)
    weekly = http.get(fakes.codex_usage_url, headers=headers).json()["rate_limit"]
    assert weekly["primary_window"]["limit_window_seconds"] == 604800 and weekly["secondary_window"] is None
    streamed = http.post(fakes.codex_base_url + "/responses", json=codex_body(), headers=headers)
    assert streamed.headers["x-codex-primary-window-minutes"] == "10080"  # the headers tell the same story
    assert streamed.headers["x-codex-primary-used-percent"] == "30"
    assert "x-codex-secondary-used-percent" not in streamed.headers
    wrong = http.get(fakes.codex_usage_url, headers={**headers, "chatgpt-account-id": "acct-1"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "token_expired"
    no_account = http.get(fakes.codex_usage_url, headers={"authorization": f"Bearer {token}"})
    assert no_account.status_code == 400
    fakes.add_fault("codex_usage", "server_error")
    assert http.get(fakes.codex_usage_url, headers=headers).status_code == 500
    assert [r.status for r in fakes.requests("codex_usage")] == [200, 200, 401, 400, 500]
    assert [r.path for r in fakes.requests("codex")] == ["/backend-api/codex/responses"]
    fakes.reset()
    assert http.get(fakes.codex_usage_url, headers=headers).json()["rate_limit"]["primary_window"]["used_percent"] == 12.0


def test_claude_refuses_a_one_hour_mark_after_a_five_minute_one(claude: Any) -> None:
    hour = {"type": "ephemeral", "ttl": "1h"}
    body = cached_conversation("a")
    body["messages"][0]["content"][0]["cache_control"] = hour  # after the system prompt's 5-minute mark
    assert_claude_400(claude(body), "ttl='1h' may not come after one with ttl='5m'")
    body["system"][1]["cache_control"] = hour
    body["messages"][0]["content"][0]["cache_control"] = MARK  # 1h first, then 5m: the right order
    assert claude(body).status_code == 200
