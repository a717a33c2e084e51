"""Every client format against both upstreams, through real HTTP and the official SDKs.

The matrix is {Anthropic Messages, Chat Completions, Responses} clients x
{Claude, Codex} x {stream, non-stream} x {plain text, tool round trip,
reasoning}: 36 cases, ids like ``anthropic-codex-stream-tool``. Stream cases use
the SDKs' streaming helpers, which fail on a malformed event order. Claude
cases use ``claude-sonnet-4-6`` (adaptive thinking) when streaming and
``claude-sonnet-4-5-20250929`` (manual budget) otherwise, so every client
exercises both thinking shapes.

The fakes answer deterministically (tests/fakes/replies.py): "Echo: <text>",
a call of the first tool when the text says "tool", "Tool said: <result>"
after a tool result, and a thinking block / reasoning item first when asked
to think. (The Codex fake always reasons: GPT models do unless told "none".)

After the matrix come requests shaped like the real agents' (PROTOCOLS.md
§7.4): Factory Droid's three provider types, Claude Code, and Codex CLI.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import wait_for_usage
from tests.fakes.replies import THINKING_TEXT
from tests.fakes.signing import issue_encrypted_content, sign_thinking

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The anthropic SDK warns on create() for models it lists as deprecated; the catalog still serves them.
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
]

ADAPTIVE_CLAUDE = "claude-sonnet-4-6"
MANUAL_CLAUDE = "claude-sonnet-4-5-20250929"
GPT = "gpt-5.5"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
# Long enough for Claude to cache (the fake, like the API, caches nothing under 1,024 tokens).
SYSTEM = "Be terse. " + "Answer in plain words and keep every answer short. " * 90
EFFORT = "high"
MANUAL_BUDGET = 2048  # -> reasoning effort "medium" (PROTOCOLS.md §6.10)

PROMPTS = {"text": "Hello matrix", "tool": "Use the tool for Paris", "reasoning": "Think about matrices"}
TOOL_RESULT = "18C, cloudy"
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture
def raw_key(api_key_factory):
    return api_key_factory(models=["claude-*", "gpt-*"])[1]


@pytest.fixture
def credentials(credential_factory):
    return {"claude": credential_factory("claude"), "codex": credential_factory("codex")}


# -- what a client saw, whatever its format ----------------------------------------------

@dataclass
class Reply:
    text: str
    reasoning: list[str]
    calls: list[tuple[str, str, dict[str, Any]]]  # (call id, name, parsed arguments)
    usage: dict[str, int]  # uncached input, cache_read, cache_write, output, prompt (total input)
    raw: Any = None
    signatures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    client: str  # "anthropic" | "chat" | "responses"
    family: str  # "claude" | "codex"
    stream: bool
    scenario: str  # "text" | "tool" | "reasoning"

    @property
    def model(self) -> str:
        if self.family == "codex":
            return GPT
        return ADAPTIVE_CLAUDE if self.stream else MANUAL_CLAUDE

    @property
    def adaptive(self) -> bool:
        """Anthropic clients ask for adaptive thinking when streaming, for a manual budget otherwise."""
        return self.stream

    @property
    def id(self) -> str:
        return f"{self.client}-{self.family}-{'stream' if self.stream else 'nonstream'}-{self.scenario}"


CASES = [Case(*values) for values in itertools.product(
    ("anthropic", "chat", "responses"), ("claude", "codex"), (True, False), ("text", "tool", "reasoning"))]


# -- drivers: one per client format ------------------------------------------------------

class AnthropicDriver:
    def __init__(self, gateway: str, key: str, case: Case) -> None:
        self.client = anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0)
        self.case = case
        self.kwargs: dict[str, Any] = {
            "model": case.model, "max_tokens": 1024, "metadata": {"user_id": "matrix-user"},
            "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],  # as Claude Code
            "messages": [{"role": "user", "content": PROMPTS[case.scenario]}],
        }
        if case.scenario == "tool":
            self.kwargs["tools"] = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}]
        if case.scenario == "reasoning":
            if case.adaptive:
                self.kwargs |= {"thinking": {"type": "adaptive"}, "output_config": {"effort": EFFORT}}
            else:
                self.kwargs |= {"thinking": {"type": "enabled", "budget_tokens": MANUAL_BUDGET}, "max_tokens": 4096}

    def send(self) -> Reply:
        if self.case.stream:
            with self.client.messages.stream(**self.kwargs) as s:
                message = s.get_final_message()
        else:
            message = self.client.messages.create(**self.kwargs)
        u = message.usage
        cache_read, cache_write = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
        return Reply(
            text="".join(b.text for b in message.content if b.type == "text"),
            reasoning=[b.thinking for b in message.content if b.type == "thinking"],
            signatures=[b.signature for b in message.content if b.type == "thinking"],
            calls=[(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"],
            usage={"input": u.input_tokens, "cache_read": cache_read, "cache_write": cache_write,
                   "output": u.output_tokens, "prompt": u.input_tokens + cache_read + cache_write},
            raw=message,
        )

    def add_tool_result(self, reply: Reply, result: str) -> None:
        call_id = reply.calls[0][0]
        self.kwargs["messages"] = [
            *self.kwargs["messages"],
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.raw.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": result}]},
        ]

    def close(self) -> None:
        self.client.close()


class ChatDriver:
    def __init__(self, gateway: str, key: str, case: Case) -> None:
        self.client = openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0)
        self.case = case
        self.kwargs: dict[str, Any] = {
            "model": case.model, "prompt_cache_key": "matrix-session",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPTS[case.scenario]}],
        }
        if case.stream:
            self.kwargs["stream_options"] = {"include_usage": True}
        if case.scenario == "tool":
            self.kwargs["tools"] = [{"type": "function", "function": {
                "name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA}}]
        if case.scenario == "reasoning":
            self.kwargs["reasoning_effort"] = EFFORT

    def send(self) -> Reply:
        if self.case.stream:
            with self.client.chat.completions.stream(**self.kwargs) as s:
                completion = s.get_final_completion()
        else:
            completion = self.client.chat.completions.create(**self.kwargs)
        message = completion.choices[0].message
        reasoning = (message.model_extra or {}).get("reasoning_content")
        u = completion.usage
        cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0
        return Reply(
            text=message.content or "",
            reasoning=[reasoning] if reasoning else [],
            calls=[(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []],
            usage={"input": u.prompt_tokens - cached, "cache_read": cached, "output": u.completion_tokens,
                   "prompt": u.prompt_tokens},
            raw=completion,
        )

    def add_tool_result(self, reply: Reply, result: str) -> None:
        message = reply.raw.choices[0].message
        calls = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                 for c in message.tool_calls]
        self.kwargs["messages"] = [
            *self.kwargs["messages"],
            {"role": "assistant", "content": message.content, "tool_calls": calls},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": result},
        ]

    def close(self) -> None:
        self.client.close()


class ResponsesDriver:
    def __init__(self, gateway: str, key: str, case: Case) -> None:
        self.client = openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0)
        self.case = case
        self.kwargs: dict[str, Any] = {
            "model": case.model, "instructions": SYSTEM, "store": False, "prompt_cache_key": "matrix-session",
            "input": [{"type": "message", "role": "user", "content": PROMPTS[case.scenario]}],
        }
        if case.scenario == "tool":
            self.kwargs["tools"] = [{"type": "function", "name": "get_weather", "description": "Weather",
                                     "parameters": WEATHER_SCHEMA, "strict": False}]
        if case.scenario == "reasoning":
            self.kwargs["reasoning"] = {"effort": EFFORT, "summary": "auto"}

    def send(self) -> Reply:
        if self.case.stream:
            with self.client.responses.stream(**self.kwargs) as s:
                response = s.get_final_response()
        else:
            response = self.client.responses.create(**self.kwargs)
        u = response.usage
        cached = u.input_tokens_details.cached_tokens
        return Reply(
            text=response.output_text,
            reasoning=[s.text for item in response.output if item.type == "reasoning" for s in item.summary],
            calls=[(i.call_id, i.name, json.loads(i.arguments)) for i in response.output if i.type == "function_call"],
            usage={"input": u.input_tokens - cached, "cache_read": cached, "output": u.output_tokens,
                   "prompt": u.input_tokens},
            raw=response,
        )

    def add_tool_result(self, reply: Reply, result: str) -> None:
        call_id = reply.calls[0][0]
        self.kwargs["input"] = [
            *self.kwargs["input"],
            *(item.model_dump(exclude_none=True) for item in reply.raw.output),
            {"type": "function_call_output", "call_id": call_id, "output": result},
        ]

    def close(self) -> None:
        self.client.close()


DRIVERS = {"anthropic": AnthropicDriver, "chat": ChatDriver, "responses": ResponsesDriver}


# -- checks --------------------------------------------------------------------------------

def reported_parts(family: str, reported: dict[str, Any]) -> dict[str, int]:
    """The fake's wire usage as uncached input / cache read / cache write / output (PROTOCOLS.md §6.9)."""
    if family == "claude":
        parts = {"input": reported["input_tokens"], "cache_read": reported["cache_read_input_tokens"],
                 "cache_write": reported["cache_creation_input_tokens"], "output": reported["output_tokens"],
                 "reasoning": 0}
    else:
        cached = reported["input_tokens_details"]["cached_tokens"]
        parts = {"input": reported["input_tokens"] - cached, "cache_read": cached, "cache_write": 0,
                 "output": reported["output_tokens"],
                 "reasoning": reported["output_tokens_details"]["reasoning_tokens"]}
    parts["prompt"] = parts["input"] + parts["cache_read"] + parts["cache_write"]
    return parts


def check_usage(case: Case, fake, reply: Reply, turn: int) -> None:
    """The record holds what the upstream reported; the client saw it in its own convention."""
    reported = fake.last_usage(case.family)
    assert reported is not None
    expected = reported_parts(case.family, reported)
    # both fakes report cache tokens here, so a mix-up shows: Claude writes on the first turn, reads after
    if case.family == "claude" and turn == 1:
        assert expected["cache_write"] > 0 and expected["cache_read"] == 0
    else:
        assert expected["cache_read"] > 0
    records = wait_for_usage(turn)
    assert len(records) == turn
    record = records[-1]
    assert (record.provider, record.requested_model, record.stream) == (case.family, case.model, case.stream)
    assert (record.status_code, record.outcome) == (200, "ok")
    assert record.input_tokens == expected["input"]
    assert record.cache_read_tokens == expected["cache_read"]
    assert record.cache_write_tokens == expected["cache_write"]
    assert record.output_tokens == expected["output"]
    assert record.reasoning_tokens == expected["reasoning"]
    seen = reply.usage
    assert seen["prompt"] == expected["prompt"], "total input (Anthropic excludes cache; OpenAI formats include it)"
    assert seen["cache_read"] == expected["cache_read"]
    assert seen["input"] == expected["prompt"] - expected["cache_read"] - seen.get("cache_write", 0)
    assert seen["output"] == expected["output"]


def system_texts(family: str, sent: dict[str, Any]) -> list[str]:
    """The system prompt as the upstream received it."""
    if family == "claude":
        return [b["text"] for b in sent.get("system") or []]
    texts = [sent["instructions"]] if sent.get("instructions") else []
    for item in sent["input"]:
        if item.get("type", "message") == "message" and item.get("role") == "developer":
            content = item["content"]
            texts += [content] if isinstance(content, str) else [p["text"] for p in content]
    return texts


def check_upstream_request(case: Case, fake, credentials) -> dict[str, Any]:
    sent = fake.requests(case.family)[-1]
    body = sent.json
    assert body["model"] == case.model
    assert SYSTEM in system_texts(case.family, body)
    if case.family == "claude":
        assert body["system"][0]["text"] == IDENTITY
        assert "oauth-2025-04-20" in sent.headers["anthropic-beta"].split(",")
        assert sent.headers["authorization"] == f"Bearer {credentials['claude'].access_token}"
        assert body.get("stream", False) is case.stream
    else:
        assert isinstance(body["instructions"], str)
        assert body["stream"] is True and body["store"] is False
        assert "reasoning.encrypted_content" in body["include"]
        assert not {"max_output_tokens", "max_tokens", "temperature", "top_p"} & set(body)
        assert sent.headers["chatgpt-account-id"] == credentials["codex"].account_id
    return body


def check_reasoning_request(case: Case, body: dict[str, Any]) -> None:
    """Thinking reached the upstream in its own shape (PROTOCOLS.md §6.10)."""
    if case.family == "claude":
        if case.model == ADAPTIVE_CLAUDE:
            assert body["thinking"]["type"] == "adaptive"
            assert body["output_config"]["effort"] == EFFORT
        else:
            assert body["thinking"]["type"] == "enabled"
            assert 1024 <= body["thinking"]["budget_tokens"] < body["max_tokens"]
    else:
        expected = "medium" if case.client == "anthropic" and not case.adaptive else EFFORT
        assert body["reasoning"] == {"effort": expected, "summary": "auto"}


def check_reasoning_surfaced(case: Case, reply: Reply) -> None:
    """Anthropic: a thinking block first; Responses: a reasoning item with its summary;
    Chat: ``reasoning_content`` (both translators emit it)."""
    assert reply.reasoning == [THINKING_TEXT]
    if case.client == "anthropic":
        assert reply.raw.content[0].type == "thinking"
        prefix = "openai:enc_" if case.family == "codex" else "sig_"
        assert reply.signatures[0].startswith(prefix)
    if case.client == "responses":
        assert reply.raw.output[0].type == "reasoning"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_translation_matrix(case, gateway, raw_key, credentials, fake):
    driver = DRIVERS[case.client](gateway, raw_key, case)
    try:
        first = driver.send()
        body = check_upstream_request(case, fake, credentials)
        check_usage(case, fake, first, turn=1)
        if case.scenario == "text":
            assert first.text == "Echo: Hello matrix"
            assert not first.calls
        elif case.scenario == "reasoning":
            assert first.text == "Echo: Think about matrices"
            check_reasoning_request(case, body)
            check_reasoning_surfaced(case, first)
        else:
            assert [(name, args) for _, name, args in first.calls] == [("get_weather", {"city": "Paris"})]
            assert first.text == ""
            driver.add_tool_result(first, TOOL_RESULT)
            second = driver.send()
            assert second.text == f"Tool said: {TOOL_RESULT}"
            assert not second.calls
            check_upstream_request(case, fake, credentials)
            check_usage(case, fake, second, turn=2)
    finally:
        driver.close()


# -- raw SSE, for the agent-shaped requests below -----------------------------------------

def sse_events(raw: str) -> list[tuple[str, Any]]:
    """``(event name, parsed data)`` per event; comments skipped, ``[DONE]`` kept as a string."""
    events = []
    for chunk in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in chunk.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            joined = "\n".join(data)
            events.append((name, joined if joined == "[DONE]" else json.loads(joined)))
    return events


def check_anthropic_stream(events: list[tuple[str, Any]]) -> dict[str, Any]:
    """§1.8 order; returns the assembled message (content blocks with joined deltas)."""
    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"], names
    message = dict(events[0][1]["message"], content=[])
    open_index = None
    for name, data in events:
        assert data["type"] == name
        if name == "content_block_start":
            assert open_index is None and data["index"] == len(message["content"])
            open_index = data["index"]
            message["content"].append(dict(data["content_block"], _json=""))
        elif name == "content_block_delta":
            assert data["index"] == open_index
            block, delta = message["content"][open_index], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = block.get("signature", "") + delta["signature"]
            elif delta["type"] == "input_json_delta":
                block["_json"] += delta["partial_json"]
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        elif name == "message_delta":
            message["stop_reason"] = data["delta"]["stop_reason"]
            message["usage"] = data["usage"]
    for block in message["content"]:
        raw = block.pop("_json")
        if block["type"] == "tool_use":
            block["input"] = json.loads(raw or "{}")
    return message


def check_responses_stream(events: list[tuple[str, Any]]) -> dict[str, Any]:
    """§3.5: numbered from 0, no [DONE], ends in response.completed; returns the final response."""
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed", [n for n, _ in events]
    return events[-1][1]["response"]


def check_chat_stream(events: list[tuple[str, Any]]) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """§2.5 with include_usage: role first, [DONE] last, one usage chunk before it.

    Returns the joined content, the tool calls and the usage.
    """
    assert events[-1][1] == "[DONE]"
    chunks = [d for _, d in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])
    content, calls = "", {}
    for chunk in chunks[:-1]:
        delta = chunk["choices"][0]["delta"]
        content += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            entry = calls.setdefault(call["index"], {"id": call.get("id"), "name": "", "arguments": ""})
            entry["name"] += (call.get("function") or {}).get("name") or ""
            entry["arguments"] += (call.get("function") or {}).get("arguments") or ""
    return content, [calls[i] for i in sorted(calls)], chunks[-1]["usage"]


# -- Factory Droid: one request per provider type (PROTOCOLS.md §7.1, §7.4) ------------------

SHELL_SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}


def droid_config(root: str, key: str, model: str) -> list[dict[str, Any]]:
    """customModels entries as a teammate would configure them for ``model``."""
    return [
        {"model": model, "displayName": f"{model} anthropic", "baseUrl": root, "apiKey": key,
         "provider": "anthropic", "maxOutputTokens": 32000},
        {"model": model, "displayName": f"{model} openai", "baseUrl": f"{root}/v1", "apiKey": key,
         "provider": "openai", "maxOutputTokens": 32000},
        {"model": model, "displayName": f"{model} generic", "baseUrl": f"{root}/v1", "apiKey": key,
         "provider": "generic-chat-completion-api", "maxOutputTokens": 32000},
    ]


def droid_request(entry: dict[str, Any], prompt: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL, headers and body as Droid 0.225 sends them for ``entry``'s provider (§7.4)."""
    shell = {"name": "Execute", "description": "Run a shell command", "schema": SHELL_SCHEMA}
    if entry["provider"] == "anthropic":
        body = {"model": entry["model"], "max_tokens": entry["maxOutputTokens"], "stream": True,
                "system": [{"type": "text", "text": "You are Droid, an AI software engineering agent."}],
                "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
                "tools": [{"name": shell["name"], "description": shell["description"], "input_schema": SHELL_SCHEMA}],
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}]}]}
        headers = {"x-api-key": entry["apiKey"], "anthropic-version": "2023-06-01"}
        return entry["baseUrl"] + "/v1/messages", headers, body
    headers = {"authorization": f"Bearer {entry['apiKey']}"}
    if entry["provider"] == "openai":
        body = {"model": entry["model"], "instructions": "You are Droid, an AI software engineering agent.",
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}],
                "tools": [{"type": "function", "name": shell["name"], "description": shell["description"],
                           "parameters": SHELL_SCHEMA, "strict": False}],
                "tool_choice": "auto", "parallel_tool_calls": True, "store": False, "stream": True,
                "reasoning": {"effort": "medium", "summary": "auto"}, "text": {"verbosity": "medium"},
                "max_output_tokens": entry["maxOutputTokens"]}
        return entry["baseUrl"] + "/responses", headers, body
    body = {"model": entry["model"], "stream": True, "stream_options": {"include_usage": True},
            "temperature": 0.2, "max_tokens": entry["maxOutputTokens"],
            "messages": [{"role": "system", "content": "You are Droid, an AI software engineering agent."},
                         {"role": "user", "content": prompt}],
            "tools": [{"type": "function", "function": {"name": shell["name"], "description": shell["description"],
                                                        "parameters": SHELL_SCHEMA}}]}
    return entry["baseUrl"] + "/chat/completions", headers, body


def stream_post(url: str, headers: dict[str, str], body: dict[str, Any]) -> list[tuple[str, Any]]:
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as r:
        raw = r.read().decode()
        assert r.status_code == 200, raw
        assert r.headers["content-type"].startswith("text/event-stream")
    return sse_events(raw)


DROID_CASES = [(family, provider) for family in ("claude", "codex")
               for provider in ("anthropic", "openai", "generic-chat-completion-api")]


@pytest.mark.parametrize(("family", "provider"), DROID_CASES, ids=[f"{f}-{p}" for f, p in DROID_CASES])
def test_droid_provider_types_reach_both_families(family, provider, gateway, raw_key, credentials, fake):
    model = ADAPTIVE_CLAUDE if family == "claude" else GPT
    [entry] = [e for e in droid_config(gateway, raw_key, model) if e["provider"] == provider]
    url, headers, body = droid_request(entry, "Use the tool to list files")
    path = httpx.URL(url).path
    assert path == {"anthropic": "/v1/messages", "openai": "/v1/responses",
                    "generic-chat-completion-api": "/v1/chat/completions"}[provider]
    events = stream_post(url, headers, body)

    if provider == "anthropic":
        message = check_anthropic_stream(events)
        call = next(b for b in message["content"] if b["type"] == "tool_use")
        assert (call["name"], call["input"]) == ("Execute", {"command": "x"})
        assert message["stop_reason"] == "tool_use"
    elif provider == "openai":
        response = check_responses_stream(events)
        call = next(i for i in response["output"] if i["type"] == "function_call")
        assert (call["name"], json.loads(call["arguments"])) == ("Execute", {"command": "x"})
        assert response["usage"]["input_tokens"] > 0
    else:
        _, calls, usage = check_chat_stream(events)
        assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [("Execute", {"command": "x"})]
        assert usage["completion_tokens"] > 0

    sent = fake.requests(family)[-1].json
    if family == "claude":
        assert sent["system"][0]["text"] == IDENTITY
        assert sent["stream"] is True and sent["tools"][0]["name"] == "Execute"
        if provider == "anthropic":  # passed through: Droid's caching and thinking survive
            assert sent["thinking"] == {"type": "adaptive"} and sent["output_config"] == {"effort": "high"}
            assert sent["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
        if provider == "openai":
            assert sent["thinking"] == {"type": "adaptive"} and sent["output_config"]["effort"] == "medium"
        if provider == "generic-chat-completion-api":
            assert sent["max_tokens"] == 32000 and "stream_options" not in sent
    else:
        assert sent["stream"] is True and sent["store"] is False and isinstance(sent["instructions"], str)
        assert "You are Droid, an AI software engineering agent." in system_texts("codex", sent)
        assert not {"max_output_tokens", "max_tokens", "temperature", "stream_options"} & set(sent)
        assert sent["tools"][0]["name"] == "Execute" and sent["tools"][0]["type"] == "function"
        if provider == "openai":
            assert sent["text"] == {"verbosity": "medium"}
            assert sent["instructions"] == "You are Droid, an AI software engineering agent."
        if provider == "anthropic":
            assert sent["reasoning"]["effort"] == "high"
    [record] = wait_for_usage(1)
    assert record.outcome == "ok" and record.provider == family and record.output_tokens > 0


# -- Claude Code asking for a GPT model (PROTOCOLS.md §7.4) -----------------------------------

CLAUDE_CODE_BETAS = ("claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
                     "thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24")
CLAUDE_CODE_SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.331.a1b; cc_entrypoint=sdk-cli;"},
    {"type": "text", "text": IDENTITY, "cache_control": {"type": "ephemeral"}},
    {"type": "text", "text": "Project rules: keep answers short.", "cache_control": {"type": "ephemeral"}},
]
CLAUDE_CODE_TOOLS = [
    {"name": "Bash", "description": "Run a command", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"], "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}},
    {"name": "Read", "description": "Read a file", "input_schema": {
        "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
]


def claude_code_body(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": GPT, "max_tokens": 32000, "stream": True, "system": CLAUDE_CODE_SYSTEM,
        "tools": CLAUDE_CODE_TOOLS, "messages": messages,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "xhigh"},
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s-1"})},
    }


def claude_code_post(gateway: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01", "anthropic-beta": CLAUDE_CODE_BETAS,
               "x-app": "cli", "user-agent": "claude-cli/2.1.331 (external, cli)"}
    return check_anthropic_stream(stream_post(gateway + "/v1/messages?beta=true", headers, body))


def test_claude_code_shaped_requests_reach_a_gpt_model(gateway, raw_key, credentials, fake):
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>Today is Monday.</system-reminder>"},
                                     {"type": "text", "text": "Use the tool to run ls",
                                      "cache_control": {"type": "ephemeral"}}]},
        {"role": "system", "content": "Per-turn control: prefer Bash."},
    ]
    first = claude_code_post(gateway, raw_key, claude_code_body(messages))
    assert [b["type"] for b in first["content"]] == ["thinking", "tool_use"]
    thinking, call = first["content"]
    assert thinking["thinking"] == ""  # display "omitted": the text is hidden, the blob kept
    assert thinking["signature"].startswith("openai:enc_")
    assert (call["name"], call["input"]) == ("Bash", {"command": "x"})
    assert first["stop_reason"] == "tool_use"

    sent = fake.requests("codex")[-1]
    body = sent.json
    texts = system_texts("codex", body)
    assert IDENTITY in texts and "Project rules: keep answers short." in texts
    assert "Per-turn control: prefer Bash." in texts  # the in-messages system turn became developer input
    assert not any(t.startswith("x-anthropic-billing-header") for t in texts)
    assert all(i.get("role") != "system" for i in body["input"])
    assert body["reasoning"] == {"effort": "xhigh", "summary": "auto"}
    assert [t["name"] for t in body["tools"]] == ["Bash", "Read"]  # the server tool cannot run behind Codex
    assert not {"context_management", "thinking", "output_config", "metadata", "max_tokens"} & set(body)
    assert body["prompt_cache_key"] and body["prompt_cache_key"] == sent.headers["session_id"]

    # Claude Code sends the whole turn back, thinking block included, plus the result.
    messages += [{"role": "assistant", "content": first["content"]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                               "content": [{"type": "text", "text": "a.txt"}]}]}]
    second = claude_code_post(gateway, raw_key, claude_code_body(messages))
    assert [b["text"] for b in second["content"] if b["type"] == "text"] == ["Tool said: a.txt"]
    resent = fake.requests("codex")[-1].json
    assert [i["type"] for i in resent["input"] if i.get("type") != "message"] == ["function_call", "function_call_output"]
    assert resent["prompt_cache_key"] == body["prompt_cache_key"]  # same session, same cache key
    records = wait_for_usage(2)
    assert [r.outcome for r in records] == ["ok", "ok"]


# -- Codex CLI talking to Claude and to GPT (PROTOCOLS.md §7.4) --------------------------------

APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
               "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}}
SHELL = {"type": "function", "name": "shell", "description": "Run a command", "strict": False,
         "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                        "required": ["command"]}}
MCP = {"type": "namespace", "name": "mcp__docs__", "description": "Docs server", "tools": [
    {"type": "function", "name": "search", "description": "Search docs", "strict": False,
     "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]}
WEB_SEARCH = {"type": "web_search", "external_web_access": False}


def developer(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def codex_cli_body(model: str, foreign_reasoning: dict[str, Any], prompt: str) -> dict[str, Any]:
    """Codex CLI 0.169: no instructions, developer messages, earlier turns resent whole."""
    return {
        "model": model,
        "input": [
            developer("You are Codex, a coding agent. Follow the repository's AGENTS.md."),
            developer("<permissions instructions>sandbox: workspace-write</permissions instructions>"),
            user("<environment_context><cwd>/repo</cwd></environment_context>"),
            user("List the files"),
            foreign_reasoning,
            {"type": "function_call", "id": "fc_earlier1", "call_id": "call_ls1", "name": "shell",
             "arguments": json.dumps({"command": ["ls"]})},
            {"type": "function_call_output", "call_id": "call_ls1", "output": "a.txt\nb.txt"},
            {"type": "message", "role": "assistant", "id": "msg_earlier1",
             "content": [{"type": "output_text", "text": "Two files.", "annotations": []}]},
            user(prompt),
        ],
        "tools": [APPLY_PATCH, SHELL, MCP, WEB_SEARCH],
        "tool_choice": "auto", "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False, "stream": True, "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0f0c2a5e-6d1b-4c8e-9a7f-2b1d0e4c5a6b",
        "client_metadata": {"x-codex-installation-id": "inst-1"},
    }


def codex_cli_headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "accept": "text/event-stream", "originator": "codex_exec",
            "session-id": "0f0c2a5e-6d1b-4c8e-9a7f-2b1d0e4c5a6b", "thread-id": "thread-1",
            "x-client-request-id": "req-1", "user-agent": "codex_exec/0.169.0 (Linux 6.8.0; x86_64) xterm"}


def test_codex_cli_shaped_request_reaches_claude(gateway, raw_key, credentials, fake):
    # An earlier GPT turn left reasoning Claude cannot verify: it must be dropped.
    gpt_reasoning = {"type": "reasoning", "id": "rs_earlier1", "summary": [{"type": "summary_text", "text": "ls"}],
                     "encrypted_content": issue_encrypted_content("earlier-turn")}
    body = codex_cli_body(ADAPTIVE_CLAUDE, gpt_reasoning, "Use the tool to fix the typo")
    response = check_responses_stream(stream_post(gateway + "/v1/responses", codex_cli_headers(raw_key), body))

    # apply_patch is offered first, so Claude calls it; it must come back as a custom_tool_call (§6.11.16).
    [call] = [i for i in response["output"] if i["type"] != "reasoning"]
    assert call["type"] == "custom_tool_call" and call["name"] == "apply_patch" and call["input"] == "x"
    assert any(i["type"] == "reasoning" and i["encrypted_content"].startswith("anthropic:") for i in response["output"])

    sent = fake.requests("claude")[-1].json
    assert [b["text"] for b in sent["system"]] == [
        IDENTITY, "You are Codex, a coding agent. Follow the repository's AGENTS.md.",
        "<permissions instructions>sandbox: workspace-write</permissions instructions>"]
    assert [t["name"] for t in sent["tools"]] == ["apply_patch", "shell", "mcp__docs__search"]
    assert sent["tools"][0]["input_schema"]["required"] == ["input"]
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "thinking" in sent  # effort medium, on an adaptive model
    history = json.dumps(sent["messages"])
    assert "enc_" not in history and '"thinking"' not in history  # the GPT reasoning was dropped
    assert not {"client_metadata", "prompt_cache_key", "include", "store", "reasoning"} & set(sent)

    # Codex then sends the call and its output back; the thinking item rides along.
    body["input"] += [*response["output"], {"type": "custom_tool_call_output", "call_id": call["call_id"],
                                           "output": "Done!"}]
    again = check_responses_stream(stream_post(gateway + "/v1/responses", codex_cli_headers(raw_key), body))
    assert [p["text"] for i in again["output"] if i["type"] == "message" for p in i["content"]] == ["Tool said: Done!"]
    resent = fake.requests("claude")[-1].json
    turn = resent["messages"][-2]
    assert turn["role"] == "assistant" and [b["type"] for b in turn["content"]] == ["thinking", "tool_use"]
    assert turn["content"][1]["input"] == {"input": "x"}


def test_codex_cli_shaped_request_reaches_a_gpt_model(gateway, raw_key, credentials, fake):
    # An earlier Claude turn left a signature the Codex backend cannot decrypt: it must be dropped.
    claude_reasoning = {"type": "reasoning", "id": "rs_earlier1", "summary": [{"type": "summary_text", "text": "ls"}],
                        "encrypted_content": "anthropic:" + sign_thinking("ls")}
    body = codex_cli_body(GPT, claude_reasoning, "Use the tool to patch again")
    response = check_responses_stream(stream_post(gateway + "/v1/responses", codex_cli_headers(raw_key), body))
    call = next(i for i in response["output"] if i["type"] == "custom_tool_call")  # apply_patch, as GPT calls it
    assert call["name"] == "apply_patch" and call["input"].startswith("*** Begin Patch\n")
    reasoning = next(i for i in response["output"] if i["type"] == "reasoning")
    assert reasoning["encrypted_content"].startswith("enc_")

    sent = fake.requests("codex")[-1]
    out = sent.json
    assert out["instructions"] == "" and out["stream"] is True and out["store"] is False
    assert [i["role"] for i in out["input"] if i.get("type") == "message"][:2] == ["developer", "developer"]
    assert all(i["type"] != "reasoning" for i in out["input"])  # the Claude blob was dropped
    assert all("id" not in i for i in out["input"])  # ids of never-stored items are stripped
    assert [t["type"] for t in out["tools"]] == ["custom", "function", "namespace", "web_search"]
    assert out["prompt_cache_key"] == body["prompt_cache_key"] and out["parallel_tool_calls"] is False
    assert sent.headers["originator"] == "codex_exec"
    assert sent.headers["session_id"] == "0f0c2a5e-6d1b-4c8e-9a7f-2b1d0e4c5a6b"
    assert sent.headers["chatgpt-account-id"] == credentials["codex"].account_id

    # The next turn resends Codex's own reasoning, which the backend accepts.
    body["input"] += [*response["output"], {"type": "custom_tool_call_output", "call_id": call["call_id"],
                                           "output": "Patched a.txt"}]
    again = check_responses_stream(stream_post(gateway + "/v1/responses", codex_cli_headers(raw_key), body))
    assert any(p.get("text") == "Tool said: Patched a.txt" for i in again["output"] if i["type"] == "message"
               for p in i["content"])
    resent = fake.requests("codex")[-1].json
    assert [i["type"] for i in resent["input"]].count("reasoning") == 1


# -- Chat clients with a freeform (custom) tool, to both families --------------------------

CHAT_APPLY_PATCH = {"type": "custom", "custom": {k: v for k, v in APPLY_PATCH.items() if k != "type"}}


def chat_custom_call(gateway: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """The one tool call of a Chat reply, streamed or not, as {id, type, name, input}."""
    headers = {"authorization": f"Bearer {key}"}
    if not body.get("stream"):
        r = httpx.post(gateway + "/v1/chat/completions", json=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        [call] = r.json()["choices"][0]["message"]["tool_calls"]
        return {"id": call["id"], "type": call["type"], **call.get("custom", {})}
    events = stream_post(gateway + "/v1/chat/completions", headers, body)
    assert events[-1][1] == "[DONE]"
    parts = [c for _, d in events[:-1] for c in d["choices"][0]["delta"].get("tool_calls") or []]
    head = parts[0]
    assert {p["index"] for p in parts} == {0} and head["type"] == "custom"
    return {"id": head["id"], "type": head["type"], "name": head["custom"]["name"],
            "input": "".join(p["custom"].get("input") or "" for p in parts)}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", [MANUAL_CLAUDE, GPT])
def test_chat_custom_tool_round_trip(model, stream, gateway, raw_key, credentials, fake):
    body = {"model": model, "stream": stream, "tools": [CHAT_APPLY_PATCH],
            "messages": [{"role": "user", "content": "Use the tool to add a.txt"}]}
    call = chat_custom_call(gateway, raw_key, body)
    assert {k: call[k] for k in ("type", "name")} == {"type": "custom", "name": "apply_patch"}
    family = "claude" if model == MANUAL_CLAUDE else "codex"
    sent = fake.requests(family)[-1].json
    if family == "claude":
        assert call["input"] == "x"  # what the fake Claude puts in a string argument
        assert sent["tools"][0]["input_schema"]["required"] == ["input"] and "lark" in sent["tools"][0]["description"]
    else:
        assert call["input"].startswith("*** Begin Patch\n") and call["input"].endswith("*** End Patch")
        assert sent["tools"][0]["type"] == "custom" and sent["tools"][0]["format"]["syntax"] == "lark"

    body["stream"] = False
    body["messages"] += [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": call["id"], "type": "custom", "custom": {"name": "apply_patch", "input": call["input"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "Done!"}]
    r = httpx.post(gateway + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {raw_key}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Tool said: Done!"
    resent = fake.requests(family)[-1].json
    if family == "claude":
        assert resent["messages"][1]["content"][-1]["input"] == {"input": "x"}
    else:
        assert [i["type"] for i in resent["input"][1:]] == ["custom_tool_call", "custom_tool_call_output"]
    assert [rec.outcome for rec in wait_for_usage(2)] == ["ok", "ok"]
