"""What the real Anthropic API (through a Claude Code OAuth token) rejects.

Pure functions: headers and a parsed JSON body go in, ``(status, error body)``
or None comes out.  The rules are PROTOCOLS.md §1, §4.6 and Appendix A; the
messages imitate the real ones closely enough that a gateway test can tell
which rule fired.  Token *validity* is not checked here (the server owns the
token registry); only the header shape is.

Validation raises ``_Invalid`` internally so that deep checks stay one-liners;
the public functions turn it into the error envelope.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .anthropic_wire import error_body
from .signing import is_issued_redacted_thinking, is_issued_signature

Rejection = tuple[int, dict[str, Any]]

OAUTH_BETA = "oauth-2025-04-20"
BILLING_PREFIX = "x-anthropic-billing-header:"
IDENTITY_SENTENCES = (
    "You are Claude Code, Anthropic's official CLI for Claude.",
    "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
)
CLAUDE_CODE_ONLY = (
    "This credential is only authorized for use with Claude Code and cannot be used for other API requests."
)
OAUTH_NOT_SUPPORTED = "OAuth authentication is currently not supported."

MESSAGES_FIELDS = frozenset(
    {
        "model", "max_tokens", "messages", "system", "stream", "temperature", "top_p", "top_k",
        "stop_sequences", "tools", "tool_choice", "thinking", "output_config", "metadata",
        "service_tier", "cache_control", "context_management", "container", "mcp_servers",
        "inference_geo", "speed",
    }
)  # fmt: skip
COUNT_TOKENS_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
     "cache_control", "context_management", "mcp_servers"}
)  # fmt: skip

BLOCKS_BY_ROLE = {
    "user": ("text", "image", "document", "tool_result", "search_result"),
    "assistant": ("text", "tool_use", "thinking", "redacted_thinking"),
    "system": ("text",),
}
TOOL_RESULT_BLOCKS = ("text", "image", "document", "search_result")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
SERVER_TOOL_TYPE = re.compile(r"^[a-z_]+_\d{8}$")  # e.g. web_search_20250305
MAX_CACHE_BREAKPOINTS = 4
MIN_THINKING_BUDGET = 1024


class _Invalid(Exception):
    """A request the real API would refuse; becomes the error envelope."""

    def __init__(self, message: str, status: int = 400, error_type: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.error_type = error_type

    def rejection(self) -> Rejection:
        return self.status, error_body(self.error_type, str(self))


def _shape_error(exc: Exception) -> Rejection:
    """A shape the checks above did not foresee: the real API answers any of them with a 400."""
    return _Invalid(f"Input should be a valid request body ({type(exc).__name__})").rejection()


# --- headers ---------------------------------------------------------------


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; a repeated header (anthropic-beta may be) is comma-joined."""
    merged: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def beta_flags(headers: Mapping[str, str]) -> set[str]:
    raw = _lower_headers(headers).get("anthropic-beta", "")
    return {flag.strip() for flag in raw.split(",") if flag.strip()}


def bearer_token(headers: Mapping[str, str]) -> str | None:
    auth = _lower_headers(headers).get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_oauth_token(token: str | None) -> bool:
    return bool(token and token.startswith("sk-ant-oat"))


def validate_headers(headers: Mapping[str, str]) -> Rejection | None:
    """Auth-header shape and ``anthropic-version``; shared by every endpoint."""
    try:
        _check_headers(headers)
    except _Invalid as exc:
        return exc.rejection()
    return None


def _check_headers(headers: Mapping[str, str]) -> None:
    lowered = _lower_headers(headers)
    # The fake issues no API keys, and an OAuth request must not carry one:
    # the real API tries the x-api-key first and refuses it.
    if "x-api-key" in lowered:
        raise _Invalid("invalid x-api-key", 401, "authentication_error")
    token = bearer_token(headers)
    if token is None:
        raise _Invalid("x-api-key header is required", 401, "authentication_error")
    if not is_oauth_token(token):
        raise _Invalid("Invalid bearer token", 401, "authentication_error")
    if OAUTH_BETA not in beta_flags(headers):
        raise _Invalid(OAUTH_NOT_SUPPORTED, 401, "authentication_error")
    if "anthropic-version" not in lowered:
        raise _Invalid("anthropic-version: header is required")


# --- public entry points ---------------------------------------------------


def validate_messages_request(headers: Mapping[str, str], body: object) -> Rejection | None:
    """Check a ``POST /v1/messages`` request; None when the real API would accept it."""
    rejected = validate_headers(headers)
    if rejected is not None:
        return rejected
    return validate_messages_body(body, oauth=is_oauth_token(bearer_token(headers)))


def validate_messages_body(body: object, *, oauth: bool = True) -> Rejection | None:
    """The body rules alone (the server checks headers and token first)."""
    try:
        _check_messages_body(body, oauth=oauth)
    except _Invalid as exc:
        return exc.rejection()
    except (TypeError, AttributeError, KeyError) as exc:
        return _shape_error(exc)
    return None


def validate_count_tokens_request(headers: Mapping[str, str], body: object) -> Rejection | None:
    """Check ``POST /v1/messages/count_tokens``: no max_tokens, no stream, no identity rule."""
    rejected = validate_headers(headers)
    if rejected is not None:
        return rejected
    return validate_count_tokens_body(body)


def validate_count_tokens_body(body: object) -> Rejection | None:
    try:
        obj = _require_object(body)
        _check_known_fields(obj, COUNT_TOKENS_FIELDS)
        _check_model(obj)
        _check_system(obj.get("system"))
        _check_messages(obj.get("messages"))
        _check_tools(obj)
        _check_thinking_shape(obj.get("thinking"), max_tokens=None)
        _check_cache_control(obj)
    except _Invalid as exc:
        return exc.rejection()
    except (TypeError, AttributeError, KeyError) as exc:
        return _shape_error(exc)
    return None


# --- body ------------------------------------------------------------------


def _check_messages_body(body: object, *, oauth: bool) -> None:
    obj = _require_object(body)
    _check_known_fields(obj, MESSAGES_FIELDS)
    _check_model(obj)
    _check_max_tokens(obj)
    system = _check_system(obj.get("system"))
    turns = _check_messages(obj.get("messages"))
    _check_tools(obj)
    _check_sampling(obj)
    _check_thinking(obj, turns)
    _check_metadata(obj.get("metadata"))
    _check_cache_control(obj)
    if oauth:
        _check_identity(system)


def _require_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Invalid("There was an error parsing the body of your request: expected a JSON object")
    return body


def _check_known_fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    # The real API is strict: leaked client fields (n, stream_options,
    # reasoning_effort, ...) are 400s, which is a classic translator bug.
    for name in body:
        if name not in allowed:
            raise _Invalid(f"{name}: Extra inputs are not permitted")


def _check_model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _Invalid("model: Field required")
    if not model.startswith("claude-"):
        raise _Invalid(f"model: {model}", 404, "not_found_error")


def _check_max_tokens(body: dict[str, Any]) -> None:
    if "max_tokens" not in body:
        raise _Invalid("max_tokens: Field required")
    value = body["max_tokens"]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid("max_tokens: Input should be a valid integer")
    if value < 1:
        raise _Invalid("max_tokens: Input should be greater than or equal to 1")


def _check_system(system: object) -> list[dict[str, Any]]:
    """Validate ``system`` and return it as a list of text blocks."""
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    if not isinstance(system, list):
        raise _Invalid("system: Input should be a valid string or list")
    for j, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _Invalid(f"system.{j}.type: Input should be 'text'")
        _check_text(f"system.{j}", block, allow_blank=False)
    return system


def _check_identity(system: list[dict[str, Any]]) -> None:
    texts = [block.get("text", "") for block in system]
    if texts and texts[0].startswith(BILLING_PREFIX):
        texts = texts[1:]
    if not texts or texts[0].strip() not in IDENTITY_SENTENCES:
        raise _Invalid(CLAUDE_CODE_ONLY)


def _check_metadata(metadata: object) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise _Invalid("metadata: Input should be a valid dictionary")
    for key in metadata:
        if key != "user_id":
            raise _Invalid(f"metadata.{key}: Extra inputs are not permitted")
    if "user_id" in metadata and not isinstance(metadata["user_id"], (str, type(None))):
        raise _Invalid("metadata.user_id: Input should be a valid string")


# --- messages and blocks ---------------------------------------------------


@dataclass
class _Turn:
    """Consecutive same-role messages, merged as the API merges them."""

    role: str
    blocks: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (message index, block)

    def tool_use_ids(self) -> list[str]:
        return [b["id"] for _, b in self.blocks if b.get("type") == "tool_use"]


def _check_messages(messages: object) -> list[_Turn]:
    if messages is None:
        raise _Invalid("messages: Field required")
    if not isinstance(messages, list):
        raise _Invalid("messages: Input should be a valid list")
    if not messages:
        raise _Invalid("messages: at least one message is required")
    last = len(messages) - 1
    for i, message in enumerate(messages):
        _check_message(i, message, final=i == last)
    turns = _merge_turns(messages)
    if not turns or turns[0].role != "user":
        raise _Invalid('messages: first message must use the "user" role')
    _check_tool_pairing(turns)
    return turns


def _check_message(i: int, message: object, *, final: bool) -> None:
    if not isinstance(message, dict):
        raise _Invalid(f"messages.{i}: Input should be a valid dictionary")
    role = message.get("role")
    # role "system" inside messages is accepted: Claude Code's per-turn
    # control beta sends it and the real API takes it (PROTOCOLS.md §7.4).
    if role not in BLOCKS_BY_ROLE:
        raise _Invalid(f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
    if "content" not in message:
        raise _Invalid(f"messages.{i}.content: Field required")
    prefill = final and role == "assistant"
    for j, block in _content_blocks(i, message["content"], prefill=prefill):
        _check_block(f"messages.{i}.content.{j}", block, role, allow_blank=prefill)


def _content_blocks(i: int, content: object, *, prefill: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    empty = f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
    if isinstance(content, str):
        if not content.strip() and not prefill:
            raise _Invalid(empty)
        yield 0, {"type": "text", "text": content}
        return
    if not isinstance(content, list):
        raise _Invalid(f"messages.{i}.content: Input should be a valid string or list")
    if not content and not prefill:
        raise _Invalid(empty)
    yield from enumerate(content)


def _check_block(path: str, block: object, role: str, *, allow_blank: bool) -> None:
    if not isinstance(block, dict):
        raise _Invalid(f"{path}: Input should be a valid dictionary")
    kind = block.get("type")
    allowed = BLOCKS_BY_ROLE[role]
    if kind not in allowed:
        expected = ", ".join(f"'{t}'" for t in allowed)
        raise _Invalid(
            f"{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags: {expected}"
        )
    _BLOCK_CHECKS[kind](path, block, allow_blank)


def _check_text(path: str, block: dict[str, Any], allow_blank: bool) -> None:
    text = block.get("text")
    if not isinstance(text, str):
        raise _Invalid(f"{path}.text: Input should be a valid string")
    if not text.strip() and not allow_blank:
        raise _Invalid(f"{path}: text content blocks must be non-empty")


def _check_image(path: str, block: dict[str, Any], allow_blank: bool) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _Invalid(f"{path}.source: Field required")
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") not in IMAGE_TYPES:
            raise _Invalid(f"{path}.source.base64.media_type: Input should be {', '.join(IMAGE_TYPES)}")
        _check_base64(f"{path}.source.base64.data", source.get("data"))
    elif kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _Invalid(f"{path}.source.url.url: Input should be a valid URL")
    elif kind == "file":
        if not isinstance(source.get("file_id"), str):
            raise _Invalid(f"{path}.source.file.file_id: Field required")
    else:
        raise _Invalid(
            f"{path}.source: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            "'base64', 'url', 'file'"
        )


def _check_base64(path: str, data: object) -> None:
    if not isinstance(data, str) or not data:
        raise _Invalid(f"{path}: Field required")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid(f"{path}: invalid base64 data") from None


def _check_document(path: str, block: dict[str, Any], allow_blank: bool) -> None:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") not in ("base64", "text", "url", "content", "file"):
        raise _Invalid(f"{path}.source: Input should be a valid document source")
    if source["type"] == "base64":
        _check_base64(f"{path}.source.base64.data", source.get("data"))


def _check_search_result(path: str, block: dict[str, Any], allow_blank: bool) -> None:
    if not isinstance(block.get("content"), list):
        raise _Invalid(f"{path}.content: Field required")


def _check_tool_use(path: str, block: dict[str, Any], allow_blank: bool) -> None:
    tool_id = block.get("id")
    if not isinstance(tool_id, str) or not TOOL_ID.match(tool_id):
        raise _Invalid(f"{path}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
    if not isinstance(block.get("name"), str) or not block["name"]:
        raise _Invalid(f"{path}.name: Field required")
    if not isinstance(block.get("input"), dict):
        raise _Invalid(f"{path}.input: Input should be a valid dictionary")


def _check_tool_result(path: str, block: dict[str, Any], allow_blank: bool) -> None:
    if not isinstance(block.get("tool_use_id"), str):
        raise _Invalid(f"{path}.tool_use_id: Field required")
    if "is_error" in block and not isinstance(block["is_error"], bool):
        raise _Invalid(f"{path}.is_error: Input should be a valid boolean")
    content = block.get("content", "")
    if isinstance(content, str):
        return  # an empty string result is allowed
    if not isinstance(content, list):
        raise _Invalid(f"{path}.content: Input should be a valid string or list")
    for k, inner in enumerate(content):
        inner_path = f"{path}.content.{k}"
        kind = inner.get("type") if isinstance(inner, dict) else None
        if kind not in TOOL_RESULT_BLOCKS:
            raise _Invalid(
                f"{inner_path}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
            )
        _BLOCK_CHECKS[kind](inner_path, inner, False)


def _check_thinking_block(path: str, block: dict[str, Any], allow_blank: bool) -> None:
    text = block.get("thinking")
    if not isinstance(text, str):
        raise _Invalid(f"{path}.thinking: Field required")
    # Only signatures this fake issued, for this exact text, are valid: blocks
    # edited, invented, or made by OpenAI (encrypted_content) are refused.
    if not is_issued_signature(block.get("signature"), text):
        raise _Invalid(f"{path}: Invalid `signature` in `thinking` block")


def _check_redacted(path: str, block: dict[str, Any], allow_blank: bool) -> None:
    if not is_issued_redacted_thinking(block.get("data")):
        raise _Invalid(f"{path}: Invalid `data` in `redacted_thinking` block")


_BLOCK_CHECKS = {
    "text": _check_text,
    "image": _check_image,
    "document": _check_document,
    "search_result": _check_search_result,
    "tool_use": _check_tool_use,
    "tool_result": _check_tool_result,
    "thinking": _check_thinking_block,
    "redacted_thinking": _check_redacted,
}


def _normalised(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _merge_turns(messages: list[dict[str, Any]]) -> list[_Turn]:
    """Drop in-conversation system messages and merge same-role neighbours."""
    turns: list[_Turn] = []
    for i, message in enumerate(messages):
        if message["role"] == "system":
            continue
        if not turns or turns[-1].role != message["role"]:
            turns.append(_Turn(message["role"]))
        turns[-1].blocks += [(i, b) for b in _normalised(message["content"])]
    return turns


# --- tool_use / tool_result pairing ---------------------------------------


def _check_tool_pairing(turns: list[_Turn]) -> None:
    seen: set[str] = set()
    for n, turn in enumerate(turns):
        if turn.role == "assistant":
            _check_unique_ids(turn, seen)
            _check_results_follow(turn, turns[n + 1] if n + 1 < len(turns) else None)
        else:
            previous = turns[n - 1].tool_use_ids() if n > 0 else []
            _check_results_match(turn, set(previous))


def _check_unique_ids(turn: _Turn, seen: set[str]) -> None:
    for tool_id in turn.tool_use_ids():
        if tool_id in seen:
            raise _Invalid(f"messages: `tool_use` ids must be unique. Found duplicate id: {tool_id}")
        seen.add(tool_id)


def _check_results_follow(turn: _Turn, following: _Turn | None) -> None:
    ids = turn.tool_use_ids()
    if not ids:
        return
    answered = {
        b.get("tool_use_id") for _, b in (following.blocks if following else []) if b.get("type") == "tool_result"
    }
    missing = [tool_id for tool_id in ids if tool_id not in answered]
    if missing:
        index = turn.blocks[-1][0]
        raise _Invalid(
            f"messages.{index + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
            "in the next message."
        )


def _check_results_match(turn: _Turn, expected: set[str]) -> None:
    seen: set[str] = set()
    other_content = False
    for i, block in turn.blocks:
        if block.get("type") != "tool_result":
            other_content = True
            continue
        tool_id = block.get("tool_use_id")
        if other_content:
            raise _Invalid(
                f"messages.{i}: `tool_result` blocks must come first in the user message, before any other content"
            )
        if tool_id not in expected:
            raise _Invalid(
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {tool_id}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            )
        if tool_id in seen:
            raise _Invalid(f"messages.{i}: found multiple `tool_result` blocks with id: {tool_id}")
        seen.add(tool_id)


# --- tools, sampling, thinking, caching ------------------------------------


def _check_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _Invalid("tools: Input should be a valid list")
        for k, tool in enumerate(tools):
            name = _check_tool(k, tool)
            if name in names:
                raise _Invalid("tools: Tool names must be unique.")
            names.add(name)
    _check_tool_choice(body.get("tool_choice"), has_tools=bool(tools))


def _check_tool(k: int, tool: object) -> str:
    if not isinstance(tool, dict):
        raise _Invalid(f"tools.{k}: Input should be a valid dictionary")
    kind = tool.get("type")
    name = tool.get("name")
    if isinstance(kind, str) and SERVER_TOOL_TYPE.match(kind):
        return str(name)  # server tools (web_search_20250305, ...) carry no schema
    if kind not in (None, "custom"):
        # An OpenAI-shaped {"type":"function","function":{...}} tool lands here.
        raise _Invalid(f"tools.{k}: Input tag '{kind}' found using 'type' does not match any of the expected tags")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise _Invalid(f"tools.{k}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise _Invalid(f"tools.{k}.custom.input_schema: Field required")
    if schema.get("type") != "object":
        raise _Invalid(f"tools.{k}.custom.input_schema.type: Input should be 'object'")
    return name


def _check_tool_choice(choice: object, *, has_tools: bool) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise _Invalid("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
    if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        raise _Invalid("tool_choice.tool.name: Field required")
    if choice["type"] in ("any", "tool") and not has_tools:
        raise _Invalid("tool_choice may only be specified while providing tools.")


def _check_sampling(body: dict[str, Any]) -> None:
    temperature, top_p, top_k = body.get("temperature"), body.get("top_p"), body.get("top_k")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 1):
        raise _Invalid("temperature: Input should be less than or equal to 1")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 <= top_p <= 1):
        raise _Invalid("top_p: Input should be less than or equal to 1")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
        raise _Invalid("top_k: Input should be greater than or equal to 0")
    if temperature is not None and top_p is not None:
        raise _Invalid("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) and s.strip() for s in stops)):
        raise _Invalid("stop_sequences: each stop sequence must contain non-whitespace")


def _check_thinking_shape(thinking: object, *, max_tokens: int | None) -> str:
    """Validate the ``thinking`` object and return its type ("disabled" when absent)."""
    if thinking is None:
        return "disabled"
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive", "disabled"):
        raise _Invalid("thinking: Input tag does not match any of the expected tags: 'enabled', 'adaptive', 'disabled'")
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise _Invalid("thinking.enabled.budget_tokens: Field required")
        if budget < MIN_THINKING_BUDGET:
            raise _Invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if max_tokens is not None and budget >= max_tokens:
            raise _Invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")
    return str(thinking["type"])


def _check_thinking(body: dict[str, Any], turns: list[_Turn]) -> None:
    if _check_thinking_shape(body.get("thinking"), max_tokens=body["max_tokens"]) == "disabled":
        return
    temperature, top_p = body.get("temperature"), body.get("top_p")
    if temperature is not None and temperature != 1:
        raise _Invalid("`temperature` may only be set to 1 when thinking is enabled or in adaptive mode.")
    if "top_k" in body:
        raise _Invalid("`top_k` is not available when thinking is enabled.")
    if top_p is not None and top_p < 0.95:
        raise _Invalid("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled.")
    choice = body.get("tool_choice") or {}
    if choice.get("type") in ("any", "tool"):
        raise _Invalid("Thinking may not be enabled when tool_choice forces tool use.")
    _check_thinking_leads_tool_loop(turns)


def _check_thinking_leads_tool_loop(turns: list[_Turn]) -> None:
    # With thinking on, the final assistant turn, when it holds tool_use, must
    # open with its (signed) thinking block: clients that drop thinking break here.
    assistant = next((t for t in reversed(turns) if t.role == "assistant"), None)
    if assistant is None or not assistant.tool_use_ids():
        return
    index, first = assistant.blocks[0]
    if first.get("type") not in ("thinking", "redacted_thinking"):
        raise _Invalid(
            f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{first.get('type')}`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block."
        )


def _check_cache_control(body: dict[str, Any]) -> None:
    marks = list(_cache_controls(body))
    for mark in marks:
        if not isinstance(mark, dict) or mark.get("type") != "ephemeral" or mark.get("ttl", "5m") not in ("5m", "1h"):
            raise _Invalid("cache_control: Input should be {'type': 'ephemeral', 'ttl'?: '5m' | '1h'}")
    if len(marks) > MAX_CACHE_BREAKPOINTS:
        raise _Invalid(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marks)}."
        )
    # The prompt is cached in tools -> system -> messages order, and a longer-lived entry may not
    # follow a shorter one: a 1h mark after a 5m mark is refused (wording approximated).
    ttls = [m.get("ttl", "5m") for key in ("tools", "system", "messages") for m in _cache_controls(body.get(key))]
    if "5m" in ttls and "1h" in ttls[ttls.index("5m"):]:
        raise _Invalid(
            "A cache_control block with ttl='1h' may not come after one with ttl='5m': "
            "blocks with a longer TTL must come before blocks with a shorter TTL."
        )


def _cache_controls(node: object) -> Iterator[object]:
    if isinstance(node, dict):
        if node.get("cache_control") is not None:
            yield node["cache_control"]
        for key, value in node.items():
            if key != "cache_control":
                yield from _cache_controls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _cache_controls(value)
