"""Hypothesis strategies for VALID client requests in the three client formats.

Each strategy draws a request a real client could send (PROTOCOLS.md §1-§3,
shapes from §7.4: Claude Code, Codex CLI, Droid and the SDKs), valid in its
own format:

- ``anthropic_requests()``: Messages API bodies (Claude Code, Droid
  ``anthropic``, the anthropic SDK);
- ``chat_requests()``: Chat Completions bodies (Droid generic, openai SDK);
- ``responses_requests()``: Responses bodies (Codex CLI, Droid ``openai``,
  openai SDK).

All three render one shared conversation plan (``plans()``): a first user turn,
then assistant text turns, tool rounds (one or more parallel calls, each
followed by its result) and user turns, with system/developer messages in
between.  The renderers keep each format's own pairing rules (Anthropic
``tool_result`` first in the very next user turn, Chat ``tool`` messages right
after the assistant ``tool_calls``, Responses outputs after their call) and add
what only that format has: signed thinking blocks, reasoning items, custom and
namespace tools, hosted tools, cache_control breakpoints, images and PDFs.

Opaque reasoning blobs are only ones the fakes accept (``tests/fakes/signing``)
or ones the gateway itself hands out for the other provider (``openai:`` /
``anthropic:`` prefixed), which it must drop before they reach an upstream.

Each tool result's text starts with ``out-<n>`` (n unique in the request),
so a property can find a result again after ids were rewritten.
"""
from __future__ import annotations

import base64
import json
import string
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from gateway.translate.mapping import (
    ANTHROPIC_SIGNATURE_PREFIX,
    FOREIGN_SIGNATURE_PREFIX,
    Target,
)
from gateway.translate.responses_output import REDACTED_PREFIX
from tests.fakes.signing import (
    issue_encrypted_content,
    issue_redacted_thinking,
    sign_thinking,
)

Json = dict[str, Any]

CLAUDE_MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-6", "claude-haiku-4-5-20251001")
CODEX_MODELS = ("gpt-5-codex", "gpt-5.1-codex-max", "gpt-5.4")
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
AGENT_SDK_IDENTITY = "You are a Claude agent, built on Anthropic's Claude Agent SDK."
BILLING = "x-anthropic-billing-header: cc_version=2.1.331.a1f; cc_entrypoint=cli;"
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
ALNUM = string.ascii_letters + string.digits

# -- text ---------------------------------------------------------------------------

WORDS = (
    "List", "the", "files", "in", "src/", "Fix", "failing", "test", "What's", "weather", "Paris?",
    "héllo", "naïve", "日本語", "emoji 🎉", "tab\there", "line\nbreak", 'say "hi"', "back\\slash",
    "<environment_context>", "</cwd>", "{\"json\": 1}", "```py\nprint(1)\n```", "100%", "$HOME",
)
_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
_VISIBLE = st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc", "Cf"))


def texts(max_words: int = 8) -> st.SearchStrategy[str]:
    """Text with at least one non-whitespace character: what every real prompt holds."""
    return st.one_of(
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=max_words).map(" ".join),
        st.tuples(st.text(_CHARS, max_size=12), _VISIBLE, st.text(_CHARS, max_size=12)).map("".join),
    )


# Strategies are built once: building them inside draws costs more than drawing from them.
TEXT = texts()
SHORT_TEXT = texts(2)
OPT_TEXT = st.none() | TEXT
THINKING_TEXT = st.just("") | TEXT  # display "omitted" thinking is empty but signed
OPT_THINKING = st.none() | THINKING_TEXT
BOOL = st.booleans()
_TIGHT = TEXT.map(str.strip).filter(bool)  # no trailing whitespace: the API refuses such a prefill
_DICE = {n: st.integers(0, n - 1) for n in range(2, 16)}


_DISPLAY = st.sampled_from(({}, {"display": "omitted"}, {"display": "summarized"}))
_THINKING_SAMPLING = st.sampled_from(({}, {"temperature": 1}, {"top_p": 0.95}, {"top_p": 1.0}))
_HOSTED_TOOLS = st.sampled_from(({"type": "web_search"}, {"type": "local_shell"},
                                 {"type": "web_search", "search_context_size": "medium"}))
_BLANK = st.sampled_from(("", " ", "\n\n", "\t "))
_ID_SEED = st.text(ALNUM, min_size=4, max_size=24)
_COUNT = {n: st.integers(0, n) for n in (1, 2, 3, 4)}
_SYSTEM_TEXTS = st.lists(TEXT, min_size=1, max_size=3)


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True with probability about 1/n."""
    return draw(_DICE[n]) == 0


# -- media ----------------------------------------------------------------------------

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_PAYLOAD = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode())


@dataclass(frozen=True)
class Image:
    media_type: str  # "url" for an https image
    data: str
    jpg_alias: bool = False  # clients often write image/jpg; the gateway must send image/jpeg

    def data_url(self) -> str:
        media = "image/jpg" if self.media_type == "image/jpeg" and self.jpg_alias else self.media_type
        return self.data if self.media_type == "url" else f"data:{media};base64,{self.data}"


images = st.one_of(
    st.builds(Image, st.sampled_from(IMAGE_TYPES), _PAYLOAD, st.booleans()),
    st.builds(Image, st.just("url"), st.sampled_from(
        ("https://example.com/a.png", "https://cdn.example.org/img/cat.jpg?x=1", "http://localhost:8000/s.webp"))),
)


@dataclass(frozen=True)
class Pdf:
    data: str  # base64, or an https URL when ``url``
    url: bool = False


pdfs = st.one_of(st.builds(Pdf, _PAYLOAD), st.builds(Pdf, st.just("https://example.com/paper.pdf"), st.just(True)))

# -- tools ----------------------------------------------------------------------------

KNOWN_TOOL_NAMES = (
    "get_weather", "shell", "read_file", "Bash", "Read", "Edit", "Glob", "Grep", "TodoWrite",
    "update_plan", "view_image", "apply_patch", "mcp__github__create_issue", "mcp__fs__read_text_file",
)
_NAME_CHARS = string.ascii_letters + string.digits + "_-"


def tool_names(max_len: int = 64) -> st.SearchStrategy[str]:
    generated = st.text(_NAME_CHARS, min_size=1, max_size=max_len)
    if max_len > 64:  # Anthropic allows 128: Claude Code's long MCP names
        generated = st.one_of(generated, st.builds(
            lambda s, t: f"mcp__{s}__{t}", st.text(_NAME_CHARS, min_size=20, max_size=70),
            st.sampled_from(("read", "search_issues", "x"))))
    return st.one_of(st.sampled_from(KNOWN_TOOL_NAMES), generated)


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(_CHARS, max_size=12),
                     st.floats(allow_nan=False, allow_infinity=False, width=32))
_KEYS = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)
arguments = st.dictionaries(_KEYS, st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=6,
), max_size=4)

_PROPERTY_SCHEMAS = st.sampled_from((
    {"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "boolean"},
    {"type": "string", "enum": ["a", "b"]}, {"type": "array", "items": {"type": "string"}},
    {"type": "object", "properties": {"x": {"type": "number"}}}, {"type": "string", "description": "Path"},
))
_PROPERTIES = st.dictionaries(_KEYS, _PROPERTY_SCHEMAS, max_size=4)


@st.composite
def object_schemas(draw: st.DrawFn) -> Json | None:
    """An object JSON schema (None: the client left it out)."""
    if one_in(draw, 10):
        return None
    props = draw(_PROPERTIES)
    schema: Json = {"type": "object"}
    if props or draw(BOOL):
        schema["properties"] = props
    if props and draw(BOOL):
        schema["required"] = [k for k in sorted(props) if draw(BOOL)]
    if draw(BOOL):
        schema["additionalProperties"] = False
    if one_in(draw, 4):  # Claude Code's tools carry $schema
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return schema


@dataclass(frozen=True)
class Tool:
    name: str
    description: str | None
    schema: Json | None
    custom: bool = False  # Responses freeform tool (apply_patch)
    namespace: str | None = None  # Responses namespace it belongs to


# -- the conversation plan ----------------------------------------------------------


@dataclass
class Result:
    marker: str  # "out-<n>"; the text always starts with it unless empty
    text: str  # "" for an empty result
    image: Image | None = None
    is_error: bool = False


@dataclass
class Call:
    id_seed: str
    n: int
    tool: Tool
    args: Json
    custom_input: str
    result: Result


@dataclass
class UserTurn:
    parts: list[Any]  # str | Image | Pdf


@dataclass
class SystemTurn:
    text: str


@dataclass
class AssistantText:
    text: str
    thinking: str | None = None


@dataclass
class ToolRound:
    calls: list[Call]
    preface: str | None
    thinking: str | None  # the round's own thinking (signed by the issuing provider)
    foreign: bool  # the round came from the other provider (a model switch)
    interleaved: bool  # Responses: call, output, call, output
    results_order: list[int]


@dataclass
class Plan:
    turns: list[Any]
    prefill: str | None = None  # final assistant text (Anthropic only)
    counter: list[int] = field(default_factory=lambda: [0])


@st.composite
def _user_turn(draw: st.DrawFn) -> UserTurn:
    parts: list[Any] = [draw(TEXT)]
    if one_in(draw, 4):
        parts.append(draw(images))
        if one_in(draw, 4):
            parts.pop(0)  # an image alone: a screenshot pasted without a word
    if one_in(draw, 13):
        parts.append(draw(pdfs))
    if one_in(draw, 4):
        parts.append(draw(TEXT))
    return UserTurn(draw(st.permutations(parts)))


@st.composite
def _result(draw: st.DrawFn, n: int) -> Result:
    marker = f"out-{n}"
    kind = draw(st.sampled_from(("text", "text", "text", "empty", "image", "image_only")))
    if kind == "empty":
        return Result(marker, "")
    if kind == "image_only":  # a screenshot tool
        return Result(marker, "", draw(images))
    text = f"{marker} {draw(TEXT)}"
    image = draw(images) if kind == "image" else None
    return Result(marker, text, image, is_error=one_in(draw, 6))


@st.composite
def _tool_round(draw: st.DrawFn, plan: Plan, callable_tools: list[Tool]) -> ToolRound:
    chosen = draw(st.lists(st.sampled_from(callable_tools), min_size=1, max_size=3))
    calls = []
    for tool in chosen:
        plan.counter[0] += 1
        n = plan.counter[0]
        raw = draw(st.sampled_from(("*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch", "", "ls -la")))
        calls.append(Call(draw(_ID_SEED), n, tool, draw(arguments), raw, draw(_result(n))))
    return ToolRound(
        calls=calls,
        preface=draw(OPT_TEXT),
        thinking=draw(OPT_THINKING),
        foreign=one_in(draw, 5),
        interleaved=draw(BOOL),
        results_order=draw(st.permutations(range(len(calls)))),
    )


@st.composite
def plans(draw: st.DrawFn, tools: list[Tool], *, prefill_ok: bool = False, greeting_ok: bool = False) -> Plan:
    """First a user turn, then exchanges: text answers or tool rounds, user turns, system turns.

    ``greeting_ok``: the conversation may open with an assistant greeting (chat UIs
    do; OpenAI formats allow it, Anthropic's does not). ``prefill_ok``: it may end
    with an assistant prefill (Anthropic only).
    """
    plan = Plan([draw(_user_turn())])
    if greeting_ok and one_in(draw, 8):
        plan.turns.insert(0, AssistantText(draw(TEXT)))
    if one_in(draw, 8):
        plan.turns.insert(0, SystemTurn(draw(TEXT)))
    callable_tools = list(tools)
    for _ in range(draw(_COUNT[4])):
        if callable_tools and not one_in(draw, 3):
            for _ in range(draw(st.integers(1, 2))):
                plan.turns.append(draw(_tool_round(plan, callable_tools)))
            if draw(BOOL):
                plan.turns.append(draw(_user_turn()))
        else:
            plan.turns.append(AssistantText(draw(TEXT), draw(OPT_THINKING)))
            if one_in(draw, 5):
                plan.turns.append(SystemTurn(draw(TEXT)))
            plan.turns.append(draw(_user_turn()))
    if prefill_ok and isinstance(plan.turns[-1], UserTurn) and one_in(draw, 9):
        plan.prefill = draw(_TIGHT.filter(bool))
    return plan


def call_id(call: Call, style: str) -> str:
    """A unique call id in one of the styles real histories hold."""
    if style == "toolu":
        return f"toolu_01{call.id_seed}_{call.n}"
    if style == "call":
        return f"call_{call.id_seed}_{call.n}"
    if style == "dotted":  # Kimi/other OpenAI-compatible providers: invalid for Anthropic
        return f"functions.{call.tool.name}:{call.n}"
    if style == "long":  # over the 64 characters Codex allows
        return f"toolu_{call.id_seed * 4}{'x' * 64}_{call.n}"
    raise AssertionError(style)


@st.composite
def _tool_list(draw: st.DrawFn, max_name: int) -> list[Tool]:
    names = draw(st.lists(tool_names(max_name), max_size=4, unique=True))
    return [Tool(name, draw(OPT_TEXT), draw(object_schemas())) for name in names]


# -- Anthropic Messages ---------------------------------------------------------------


def _anthropic_user_blocks(parts: list[Any]) -> list[Json]:
    blocks: list[Json] = []
    for part in parts:
        if isinstance(part, str):
            blocks.append({"type": "text", "text": part})
        elif isinstance(part, Image):
            source = ({"type": "url", "url": part.data} if part.media_type == "url"
                      else {"type": "base64", "media_type": part.media_type, "data": part.data})
            blocks.append({"type": "image", "source": source})
        elif part.url:
            blocks.append({"type": "document", "source": {"type": "url", "url": part.data}})
        else:
            blocks.append({"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                          "data": part.data}})
    return blocks


def _anthropic_result(call: Call, tool_id: str, as_list: bool) -> Json:
    block: Json = {"type": "tool_result", "tool_use_id": tool_id}
    result = call.result
    content: list[Json] = []
    if result.text:
        content.append({"type": "text", "text": result.text})
    if result.image:
        content += _anthropic_user_blocks([result.image])
    if content:
        block["content"] = content if as_list or len(content) > 1 else result.text
    if result.is_error:
        block["is_error"] = True
    return block


def _thinking_block(text: str, foreign: bool, redacted: bool) -> Json:
    if foreign:  # a GPT turn the gateway handed to this client earlier
        return {"type": "thinking", "thinking": text,
                "signature": FOREIGN_SIGNATURE_PREFIX + issue_encrypted_content(text)}
    if redacted:
        return {"type": "redacted_thinking", "data": issue_redacted_thinking(text)}
    return {"type": "thinking", "thinking": text, "signature": sign_thinking(text)}


@st.composite
def anthropic_requests(draw: st.DrawFn) -> Json:
    tools = draw(_tool_list(128))
    plan = draw(plans(tools, prefill_ok=True))
    body: Json = {"model": draw(st.sampled_from(CLAUDE_MODELS)), "max_tokens": draw(st.integers(1, 64000))}
    breakpoints = draw(_COUNT[4])  # the API allows 4 cache_control marks per request
    # One TTL per request: the API wants 1h marks before 5m ones, mixing is rare.
    cache_control = {"type": "ephemeral", "ttl": "1h"} if one_in(draw, 4) else {"type": "ephemeral"}

    def mark(block: Json) -> Json:
        nonlocal breakpoints
        if breakpoints and draw(BOOL):
            breakpoints -= 1
            block["cache_control"] = dict(cache_control)
        return block

    # thinking first: it decides what the rest may hold (PROTOCOLS.md §1.5)
    thinking_kind = draw(st.sampled_from(("absent", "disabled", "enabled", "adaptive")))
    if thinking_kind == "enabled":
        body["max_tokens"] = max(body["max_tokens"], 1025)
        body["thinking"] = {"type": "enabled", "budget_tokens": draw(st.integers(1024, body["max_tokens"] - 1))}
    elif thinking_kind == "adaptive":
        body["thinking"] = {"type": "adaptive", **draw(_DISPLAY)}
    elif thinking_kind == "disabled":
        body["thinking"] = {"type": "disabled"}
    thinking_on = thinking_kind in ("enabled", "adaptive")
    if thinking_kind == "adaptive" or one_in(draw, 5):
        body["output_config"] = {"effort": draw(st.sampled_from(("low", "medium", "high", "xhigh", "max")))}

    system_kind = draw(st.sampled_from(("absent", "string", "blocks", "claude_code", "agent_sdk")))
    if system_kind == "string":
        body["system"] = draw(TEXT)
    elif system_kind != "absent":
        blocks = [{"type": "text", "text": t} for t in draw(_SYSTEM_TEXTS)]
        if system_kind == "claude_code":
            blocks = [{"type": "text", "text": BILLING}, {"type": "text", "text": IDENTITY}, *blocks]
        elif system_kind == "agent_sdk":
            blocks = [{"type": "text", "text": AGENT_SDK_IDENTITY}, *blocks]
        body["system"] = [mark(b) for b in blocks]

    messages: list[Json] = []

    def add(role: str, content: Any) -> None:
        messages.append({"role": role, "content": content})

    def user_content(turn: UserTurn) -> Any:
        blocks = _anthropic_user_blocks(turn.parts)
        if len(blocks) == 1 and blocks[0]["type"] == "text" and draw(BOOL):
            return blocks[0]["text"]
        return [mark(b) for b in blocks]

    for turn in plan.turns:
        if isinstance(turn, UserTurn):
            content = user_content(turn)
            previous = messages[-1] if messages else None
            if (previous and previous["role"] == "user" and isinstance(content, list)
                    and isinstance(previous["content"], list) and draw(BOOL)):
                previous["content"] += content  # text after the tool results, in the same message
            else:
                add("user", content)
        elif isinstance(turn, SystemTurn):
            # Claude Code's per-turn control beta: system messages inside messages (§7.4)
            add("system", turn.text if draw(BOOL) else [{"type": "text", "text": turn.text}])
        elif isinstance(turn, AssistantText):
            blocks = []
            if turn.thinking is not None and (thinking_on or draw(BOOL)):
                blocks.append(_thinking_block(turn.thinking, False, one_in(draw, 6)))
            blocks.append({"type": "text", "text": turn.text})
            add("assistant", blocks if blocks[0]["type"] != "text" or draw(BOOL) else turn.text)
        else:
            style = draw(st.sampled_from(("toolu", "toolu", "call", "long")))
            ids = [call_id(c, style) for c in turn.calls]
            blocks = []
            # With thinking on, every tool round Claude made opens with its thinking (§1.5).
            thinking = turn.thinking if turn.thinking is not None else ("" if thinking_on else None)
            if thinking is not None:
                blocks.append(_thinking_block(thinking, turn.foreign, one_in(draw, 6)))
            if turn.preface:
                blocks.append({"type": "text", "text": turn.preface})
            for c, tool_id in zip(turn.calls, ids):
                blocks.append({"type": "tool_use", "id": tool_id, "name": c.tool.name, "input": c.args})
            add("assistant", blocks)
            as_list = draw(BOOL)
            add("user", [_anthropic_result(turn.calls[k], ids[k], as_list) for k in turn.results_order])
    if plan.prefill and not thinking_on:
        add("assistant", plan.prefill)
    body["messages"] = messages

    if tools:
        body["tools"] = []
        for tool in tools:
            spec: Json = {"name": tool.name, "input_schema": tool.schema or {"type": "object", "properties": {}}}
            if tool.description:
                spec["description"] = tool.description
            body["tools"].append(spec)
        if "web_search" not in {t.name for t in tools} and one_in(draw, 6):
            body["tools"].append({"type": "web_search_20250305", "name": "web_search", "max_uses": 5})
        mark(body["tools"][-1])
        choices = [None, {"type": "auto"}, {"type": "none"}]
        if not thinking_on:
            choices += [{"type": "any"}, {"type": "tool", "name": draw(st.sampled_from(tools)).name}]
        choice = draw(st.sampled_from(choices))
        if choice is not None:
            if choice["type"] != "none" and draw(BOOL):
                choice = {**choice, "disable_parallel_tool_use": True}
            body["tool_choice"] = choice

    if thinking_on:
        sampling = dict(draw(_THINKING_SAMPLING))
    else:
        sampling = draw(_ANTHROPIC_SAMPLING)
    body.update(sampling)
    optional = draw(_ANTHROPIC_OPTIONAL)
    if "context_management" in optional and not thinking_on:
        del optional["context_management"]  # clear_thinking needs thinking on
    body.update(optional)
    if "output_config" in body and one_in(draw, 6):
        body["output_config"]["format"] = {"type": "json_schema", "schema": {
            "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}
    return body


# -- Chat Completions ---------------------------------------------------------------


def _chat_user_content(parts: list[Any], as_string: bool) -> Any:
    if as_string and len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    out: list[Json] = []
    for part in parts:
        if isinstance(part, str):
            out.append({"type": "text", "text": part})
        elif isinstance(part, Image):
            out.append({"type": "image_url", "image_url": {"url": part.data_url(), "detail": "auto"}})
        else:
            out.append({"type": "file", "file": {"filename": "doc.pdf",
                                                 "file_data": f"data:application/pdf;base64,{part.data}"}})
    return out


def _chat_call(draw: st.DrawFn, call: Call, call_id_: str) -> Json:
    if call.tool.custom:
        return {"id": call_id_, "type": "custom", "custom": {"name": call.tool.name, "input": call.custom_input}}
    arguments = json.dumps(call.args) if call.args or draw(BOOL) else ""
    return {"id": call_id_, "type": "function", "function": {"name": call.tool.name, "arguments": arguments}}


@st.composite
def chat_requests(draw: st.DrawFn) -> Json:
    tools = draw(_tool_list(64))
    if one_in(draw, 3) and "apply_patch" not in {t.name for t in tools}:
        tools.append(Tool("apply_patch", "Edit files with a patch.", None, custom=True))  # a Chat custom tool
    plan = draw(plans(tools, greeting_ok=True))
    messages: list[Json] = []
    for _ in range(draw(_COUNT[2])):  # Droid: one string system message; SDK users: developer
        text = draw(TEXT)
        role = draw(st.sampled_from(("system", "developer")))
        messages.append({"role": role, "content": text if draw(BOOL) else [{"type": "text", "text": text}]})
    for turn in plan.turns:
        if isinstance(turn, UserTurn):
            parts = [p for p in turn.parts if not isinstance(p, Pdf) or (not p.url and draw(BOOL))] or [draw(TEXT)]
            content = _chat_user_content(parts, draw(BOOL))
            if isinstance(content, list) and one_in(draw, 6):  # editors leave empty parts behind
                content.insert(draw(st.integers(0, len(content))), {"type": "text", "text": draw(_BLANK)})
            messages.append({"role": "user", "content": content})
        elif isinstance(turn, SystemTurn):
            messages.append({"role": draw(st.sampled_from(("system", "developer"))), "content": turn.text})
        elif isinstance(turn, AssistantText):
            kind = draw(st.sampled_from(("string", "parts", "parts", "refusal", "empty")))
            content = {"string": turn.text, "parts": [{"type": "text", "text": turn.text}],
                       "refusal": [{"type": "refusal", "refusal": turn.text}], "empty": ""}[kind]
            message: Json = {"role": "assistant", "content": content}
            if turn.thinking:  # some clients echo reasoning back; it must be ignored
                message["reasoning_content"] = turn.thinking
            messages.append(message)
        else:
            style = draw(st.sampled_from(("call", "call", "toolu", "dotted", "long")))
            ids = [call_id(c, style) for c in turn.calls]
            message = {"role": "assistant",
                       "content": turn.preface if turn.preface else (None if draw(BOOL) else ""),
                       "tool_calls": [_chat_call(draw, c, i) for c, i in zip(turn.calls, ids)]}
            messages.append(message)
            for k in turn.results_order:
                result = turn.calls[k].result
                content: Any = result.text
                if result.text and draw(BOOL):
                    content = [{"type": "text", "text": result.text}]
                messages.append({"role": "tool", "tool_call_id": ids[k], "content": content})
    body: Json = {"model": draw(st.sampled_from(CLAUDE_MODELS + CODEX_MODELS)), "messages": messages}
    if tools:
        body["tools"] = []
        for tool in tools:
            fn: Json = {"name": tool.name}
            if tool.description:
                fn["description"] = tool.description
            if tool.custom:
                fn["format"] = {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}
                body["tools"].append({"type": "custom", "custom": fn})
                continue
            if tool.schema is not None:
                fn["parameters"] = tool.schema
            if draw(BOOL):
                fn["strict"] = False
            body["tools"].append({"type": "function", "function": fn})
        pick = draw(st.sampled_from(tools))
        kind = "custom" if pick.custom else "function"
        named = {"type": kind, kind: {"name": pick.name}}
        optional_tools = draw(st.fixed_dictionaries({}, optional={
            "tool_choice": st.sampled_from(("auto", "none", "required", named)),
            "parallel_tool_calls": st.booleans(),
        }))
        body.update(optional_tools)
    stream = draw(BOOL)
    body["stream"] = stream
    if stream and draw(BOOL):
        body["stream_options"] = {"include_usage": True}
    cap = draw(st.sampled_from((None, "max_tokens", "max_completion_tokens")))
    if cap:  # the deprecated spelling or the current one, not both
        body[cap] = draw(st.integers(1, 128000))
    body.update(draw(_CHAT_OPTIONAL))
    return body


# -- Responses ------------------------------------------------------------------------


LONG_NAMESPACE = "mcp__" + "corporate_knowledge_base_and_document_search_srv" + "__"
_NAMESPACES = st.lists(st.sampled_from(("mcp__docs__", "mcp__github__", "crm", LONG_NAMESPACE)), max_size=2, unique=True)
_INNER_TOOLS = st.lists(st.sampled_from(("search", "fetch", "create_issue")), min_size=1, max_size=2, unique=True)


@st.composite
def _responses_tools(draw: st.DrawFn) -> tuple[list[Json], list[Tool]]:
    """Declared tools (function, custom, namespace, hosted) and the ones a call may name."""
    functions = draw(_tool_list(64))
    used = {t.name for t in functions}
    callable_tools = list(functions)
    declared: list[Json] = []
    for tool in functions:
        spec: Json = {"type": "function", "name": tool.name}
        if tool.description:
            spec["description"] = tool.description
        if tool.schema is not None:
            spec["parameters"] = tool.schema
        spec["strict"] = False
        declared.append(spec)
    if one_in(draw, 3) and "apply_patch" not in used:
        grammar = draw(BOOL)
        fmt = ({"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}
               if grammar else {"type": "text"})
        declared.append({"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
                         "format": fmt})
        callable_tools.append(Tool("apply_patch", None, None, custom=True))
    # Codex CLI's MCP servers: equal inner names in two namespaces; a long server
    # name makes the flat name (namespace + tool) longer than 64 characters.
    for namespace in draw(_NAMESPACES):
        inner = draw(_INNER_TOOLS)
        declared.append({"type": "namespace", "name": namespace, "description": "MCP server", "tools": [
            {"type": "function", "name": n, "description": f"{n} things",
             "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}} for n in inner]})
        callable_tools += [Tool(n, None, {"type": "object"}, namespace=namespace) for n in inner]
    if one_in(draw, 4):
        declared.append(dict(draw(_HOSTED_TOOLS)))
    return declared, callable_tools


def _responses_user_parts(parts: list[Any]) -> list[Json]:
    out: list[Json] = []
    for part in parts:
        if isinstance(part, str):
            out.append({"type": "input_text", "text": part})
        elif isinstance(part, Image):
            out.append({"type": "input_image", "image_url": part.data_url(), "detail": "auto"})
        elif part.url:
            out.append({"type": "input_file", "file_url": part.data})
        else:
            out.append({"type": "input_file", "filename": "doc.pdf",
                        "file_data": f"data:application/pdf;base64,{part.data}"})
    return out


def _reasoning_item(text: str, kind: str, n: int) -> Json:
    """A reasoning item as the gateway or Codex handed it out."""
    summary = [{"type": "summary_text", "text": text}] if text else []
    if kind == "openai":
        blob = issue_encrypted_content(f"{n}:{text}")
    elif kind == "anthropic":  # Claude thinking relayed by the gateway (responses_output.py)
        blob = ANTHROPIC_SIGNATURE_PREFIX + sign_thinking(text)
    else:
        blob, summary = REDACTED_PREFIX + issue_redacted_thinking(text), []
    return {"type": "reasoning", "id": f"rs_{n:04d}", "summary": summary, "encrypted_content": blob}


@st.composite
def responses_requests(draw: st.DrawFn) -> Json:
    declared, callable_tools = draw(_responses_tools())
    plan = draw(plans(callable_tools, greeting_ok=True))
    items: list[Json] = []

    def message(role: str, content: Any) -> Json:
        item: Json = {"role": role, "content": content}
        if not one_in(draw, 5):  # "type" may be left out
            item = {"type": "message", **item}
        return item

    for _ in range(draw(_COUNT[2])):  # Codex CLI: developer messages, no instructions
        text = draw(TEXT)
        items.append(message(draw(st.sampled_from(("developer", "system"))),
                             text if draw(BOOL) else [{"type": "input_text", "text": text}]))
    for n, turn in enumerate(plan.turns):
        if isinstance(turn, UserTurn):
            parts = _responses_user_parts(turn.parts)
            if one_in(draw, 6):  # editors leave empty parts behind
                parts.insert(draw(st.integers(0, len(parts))), {"type": "input_text", "text": draw(_BLANK)})
            single = len(parts) == 1 and parts[0]["type"] == "input_text"
            items.append(message("user", parts[0]["text"] if single and draw(BOOL) else parts))
        elif isinstance(turn, SystemTurn):
            items.append(message(draw(st.sampled_from(("developer", "system"))), turn.text))
        elif isinstance(turn, AssistantText):
            if turn.thinking is not None:
                items.append(_reasoning_item(turn.thinking, draw(st.sampled_from(("openai", "anthropic"))), n))
            text = "" if one_in(draw, 10) else turn.text  # an answer that was all tool calls upstream
            items.append({"type": "message", "role": "assistant", "id": f"msg_{n:04d}", "status": "completed",
                          "content": [{"type": "output_text", "text": text, "annotations": []}]})
        else:
            style = draw(st.sampled_from(("call", "call", "toolu", "long")))
            ids = [call_id(c, style) for c in turn.calls]
            if turn.thinking is not None:
                kind = draw(st.sampled_from(("openai", "anthropic", "redacted")))
                items.append(_reasoning_item(turn.thinking, kind, n))
            if turn.preface:
                items.append({"type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": turn.preface, "annotations": []}]})
            calls, outputs = [], []
            for c, i in zip(turn.calls, ids):
                if c.tool.custom:
                    calls.append({"type": "custom_tool_call", "id": f"ctc_{c.n:04d}", "call_id": i,
                                  "name": c.tool.name, "input": c.custom_input})
                else:
                    call: Json = {"type": "function_call", "id": f"fc_{c.n:04d}", "call_id": i,
                                  "name": c.tool.name, "arguments": json.dumps(c.args)}
                    if c.tool.namespace:
                        call["namespace"] = c.tool.namespace
                    calls.append(call)
                result = c.result
                output: Any = result.text
                if result.image:
                    output = _responses_user_parts([t for t in (result.text, result.image) if t])
                kind = "custom_tool_call_output" if c.tool.custom else "function_call_output"
                outputs.append({"type": kind, "call_id": i, "output": output})
            if turn.interleaved:
                for call, output in zip(calls, outputs):
                    items += [call, output]
            else:
                items += calls + [outputs[k] for k in turn.results_order]
    body: Json = {"model": draw(st.sampled_from(CLAUDE_MODELS + CODEX_MODELS))}
    single_text = len(items) == 1 and isinstance(items[0].get("content"), str) and items[0].get("role") == "user"
    body["input"] = items[0]["content"] if single_text and draw(BOOL) else items
    if declared:
        body["tools"] = declared
        named = [t for t in callable_tools if not t.namespace]
        choices: list[Any] = ["auto", "none", "required"]
        if named:
            pick = draw(st.sampled_from(named))
            choices.append({"type": "custom" if pick.custom else "function", "name": pick.name})
        body.update(draw(st.fixed_dictionaries({}, optional={
            "tool_choice": st.sampled_from(choices), "parallel_tool_calls": st.booleans()})))
    body.update(draw(_RESPONSES_OPTIONAL))
    return body


# -- request parameters, built once ------------------------------------------------

_ANTHROPIC_SAMPLING = st.fixed_dictionaries({}, optional={
    "temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "top_k": st.integers(0, 500)})

_ANTHROPIC_OPTIONAL = st.fixed_dictionaries({}, optional={
    "stream": st.booleans(),
    "stop_sequences": st.lists(SHORT_TEXT, min_size=1, max_size=4),
    "metadata": st.builds(lambda h: {"user_id": json.dumps({"device_id": h, "account_uuid": "a", "session_id": "s"})},
                          st.text("0123456789abcdef", min_size=8, max_size=8)),
    "context_management": st.just({"edits": [{"type": "clear_thinking_20251015"}]}),
    "service_tier": st.sampled_from(("auto", "standard_only")),
})

_STOP = SHORT_TEXT | st.just("\n")  # stop=["\n"] is common; Anthropic refuses blank stop sequences
_CHAT_OPTIONAL = st.fixed_dictionaries({}, optional={
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "stop": st.one_of(_STOP, st.lists(_STOP, min_size=1, max_size=4)),
    "reasoning_effort": st.sampled_from(EFFORTS),
    "n": st.just(1),
    "seed": st.integers(0, 2**31),
    "user": st.text(ALNUM, min_size=1, max_size=16),
    "presence_penalty": st.floats(-2, 2),
    "frequency_penalty": st.floats(-2, 2),
    "logprobs": st.booleans(),
    "response_format": st.sampled_from((
        {"type": "text"}, {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
            "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
            "additionalProperties": False}}})),
    "verbosity": st.sampled_from(("low", "medium", "high")),
    "store": st.booleans(),
    "metadata": st.just({"team": "a"}),
})

_RESPONSES_OPTIONAL = st.fixed_dictionaries({}, optional={
    "instructions": TEXT,
    "stream": st.booleans(),
    "store": st.booleans(),
    "include": st.just(["reasoning.encrypted_content"]),
    "reasoning": st.fixed_dictionaries({}, optional={
        "effort": st.sampled_from(EFFORTS), "summary": st.sampled_from(("auto", "concise", "detailed"))}),
    "max_output_tokens": st.integers(16, 128000),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "text": st.fixed_dictionaries({}, optional={
        "verbosity": st.sampled_from(("low", "medium", "high")),
        "format": st.sampled_from(({"type": "text"}, {"type": "json_object"}, {
            "type": "json_schema", "name": "answer", "strict": True,
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                       "additionalProperties": False}}))}),
    "prompt_cache_key": st.uuids().map(str),
    "client_metadata": st.just({"originator": "codex_exec"}),
    "truncation": st.sampled_from(("auto", "disabled")),
    "metadata": st.just({"team": "a"}),
    "user": st.text(ALNUM, min_size=1, max_size=16),
    "safety_identifier": st.text(ALNUM, min_size=1, max_size=16),
    "service_tier": st.sampled_from(("auto", "default", "priority", "flex")),
})


# -- targets --------------------------------------------------------------------------

claude_targets = st.builds(Target, st.sampled_from(CLAUDE_MODELS), st.sampled_from((4096, 32000, 64000)),
                           st.booleans())
codex_targets = st.builds(Target, st.sampled_from(CODEX_MODELS))
