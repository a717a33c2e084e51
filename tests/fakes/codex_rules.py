"""What the ChatGPT Codex backend rejects (PROTOCOLS.md §3.2, §5.5, §5.6, Appendix A).

Pure functions: headers and a parsed JSON body go in, ``(status, body)`` or
None comes out.  Shape errors are FastAPI-style ``{"detail": "..."}`` 400s, as
the backend sends them.  Token validity and the token/account match are the
server's job; here only their presence is checked.

Deliberately strict where a gateway commonly slips: ``role: "system"`` input
(must become ``developer``), Chat-shaped nested function tools, ``input_text``
inside assistant messages, outputs without their call, calls without their
output, and reasoning blobs not issued by this backend (e.g. Anthropic
signatures).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .signing import is_issued_compaction, is_issued_encrypted_content

Rejection = tuple[int, dict[str, Any]]

ALLOWED_FIELDS = frozenset(
    {
        "model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls",
        "reasoning", "store", "stream", "include", "prompt_cache_key", "text",
        "service_tier", "client_metadata",
    }
)  # fmt: skip
# Named so the message says which one; any other unknown field gets the same wording.
UNSUPPORTED_FIELDS = (
    "max_output_tokens", "max_completion_tokens", "max_tokens", "temperature", "top_p",
    "frequency_penalty", "presence_penalty", "previous_response_id", "truncation", "user",
    "safety_identifier", "prompt_cache_retention", "stream_options", "metadata",
)  # fmt: skip
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
HOSTED_TOOLS = (
    "web_search", "web_search_preview", "local_shell", "image_generation", "file_search",
    "code_interpreter", "computer_use_preview", "mcp", "tool_search",  # tool_search: sent by Codex CLI 0.169
)  # fmt: skip
INPUT_PARTS = ("input_text", "input_image", "input_file")
OUTPUT_PARTS = ("output_text", "refusal")
ITEM_TYPES = (
    "message", "function_call", "function_call_output", "custom_tool_call",
    "custom_tool_call_output", "reasoning", "local_shell_call", "local_shell_call_output",
    "web_search_call", "item_reference", "compaction", "compaction_trigger",
)  # fmt: skip
# /responses/compact answers one JSON object: the streaming and storage fields are refused.
COMPACT_FIELDS = frozenset(
    {
        "model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls",
        "reasoning", "prompt_cache_key", "text", "service_tier",
    }
)  # fmt: skip
NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
CODEX_MODEL = re.compile(r"^(gpt-|codex-|o\d)")  # a claude-* model here means misrouting
MAX_NAME = 64
MAX_ID = 64


class _Invalid(Exception):
    def __init__(self, detail: str, status: int = 400):
        super().__init__(detail)
        self.status = status

    def rejection(self) -> Rejection:
        return self.status, {"detail": str(self)}


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def bearer_token(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = _lower_headers(headers).get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def account_id(headers: Mapping[str, str]) -> str | None:
    return _lower_headers(headers).get("chatgpt-account-id") or None


def validate_codex_request(headers: Mapping[str, str], body: object) -> Rejection | None:
    """Check ``POST /backend-api/codex/responses``; None when the backend would accept it."""
    try:
        _check_headers(headers)
        _check_body(body)
    except _Invalid as exc:
        return exc.rejection()
    except (TypeError, AttributeError, KeyError) as exc:
        # Shapes the checks did not foresee: the backend answers any of them with a 400.
        return 400, {"detail": f"Invalid request body ({type(exc).__name__})"}
    return None


def validate_codex_body(body: object) -> Rejection | None:
    """The body rules alone (the server checks headers and token first)."""
    try:
        _check_body(body)
    except _Invalid as exc:
        return exc.rejection()
    except (TypeError, AttributeError, KeyError) as exc:
        # Shapes the checks did not foresee: the backend answers any of them with a 400.
        return 400, {"detail": f"Invalid request body ({type(exc).__name__})"}
    return None


def validate_compact_body(body: object) -> Rejection | None:
    """The body rules of ``POST /backend-api/codex/responses/compact``."""
    try:
        if not isinstance(body, dict):
            raise _Invalid("Request body must be a JSON object")
        _check_fields(body, COMPACT_FIELDS)
        _check_model(body.get("model"))
        if not isinstance(body.get("instructions", ""), str):
            raise _Invalid("Instructions are not valid")
        _check_reasoning(body.get("reasoning"))
        _check_input(body.get("input"))
        _check_tools(body.get("tools"))
    except _Invalid as exc:
        return exc.rejection()
    except (TypeError, AttributeError, KeyError) as exc:
        # Shapes the checks did not foresee: the backend answers any of them with a 400.
        return 400, {"detail": f"Invalid request body ({type(exc).__name__})"}
    return None


def _check_headers(headers: Mapping[str, str]) -> None:
    if bearer_token(headers) is None:
        raise _Invalid("Missing bearer or basic authentication in header", 401)
    if account_id(headers) is None:
        raise _Invalid("Missing ChatGPT-Account-ID header")


def _check_body(body: object) -> None:
    if not isinstance(body, dict):
        raise _Invalid("Request body must be a JSON object")
    _check_fields(body)
    _check_model(body.get("model"))
    if "instructions" not in body:
        raise _Invalid("Instructions are required")
    if not isinstance(body["instructions"], str):
        raise _Invalid("Instructions are not valid")
    if body.get("stream") is not True:
        raise _Invalid("Stream must be set to true")
    if body.get("store") is not False:
        raise _Invalid("Store must be set to false")
    _check_reasoning(body.get("reasoning"))
    _check_input(body.get("input"))
    _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))


def _check_fields(body: dict[str, Any], allowed: frozenset[str] = ALLOWED_FIELDS) -> None:
    for name in UNSUPPORTED_FIELDS:
        if name in body:
            raise _Invalid(f"Unsupported parameter: {name}")
    for name in body:
        if name not in allowed:
            raise _Invalid(f"Unsupported parameter: {name}")
    tier = body.get("service_tier")
    if tier is not None and tier != "priority":
        raise _Invalid("Unsupported parameter: service_tier")


def _check_model(model: object) -> None:
    if not isinstance(model, str) or not model:
        raise _Invalid("Model is required")
    if not CODEX_MODEL.match(model):
        raise _Invalid(f"The '{model}' model is not supported when using Codex with a ChatGPT account.")


def _check_reasoning(reasoning: object) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise _Invalid("Invalid type for 'reasoning': expected an object")
    if reasoning.get("effort", "medium") not in EFFORTS:
        raise _Invalid(f"Invalid value: '{reasoning.get('effort')}'. Supported values are: {', '.join(EFFORTS)}.")
    if reasoning.get("summary", "auto") not in ("auto", "concise", "detailed", "none", None):
        raise _Invalid(f"Invalid value for 'reasoning.summary': '{reasoning.get('summary')}'")


# --- input items -----------------------------------------------------------


def _check_input(items: object) -> None:
    if not isinstance(items, list):
        raise _Invalid("Input must be a list")
    calls: dict[str, str] = {}  # call_id -> item type, for matching outputs
    answered: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Invalid(f"Invalid type for 'input[{i}]': expected an object")
        _check_item(i, item, calls, answered)
    for call_id, kind in calls.items():
        if call_id not in answered:
            what = "function call" if kind == "function_call" else "custom tool call"
            raise _Invalid(f"No tool output found for {what} {call_id}.")


def _check_item(i: int, item: dict[str, Any], calls: dict[str, str], answered: set[str]) -> None:
    kind = item.get("type", "message")
    if kind not in ITEM_TYPES:
        raise _Invalid(f"Invalid value for 'input[{i}].type': '{kind}'")
    item_id = item.get("id")
    if item_id is not None and (not isinstance(item_id, str) or len(item_id) > MAX_ID):
        raise _Invalid(f"Invalid 'input[{i}].id': string too long. Expected a string with maximum length {MAX_ID}.")
    if kind == "message":
        _check_message(i, item)
    elif kind in ("function_call", "custom_tool_call"):
        _check_call(i, item, kind, calls)
    elif kind in ("function_call_output", "custom_tool_call_output"):
        _check_output(i, item, calls, answered)
    elif kind == "reasoning":
        _check_reasoning_item(i, item)
    elif kind == "compaction" and not is_issued_compaction(item.get("encrypted_content")):
        raise _Invalid(f"The encrypted content for item input[{i}] could not be verified.")


def _check_message(i: int, item: dict[str, Any]) -> None:
    role = item.get("role")
    # "system" is legal on api.openai.com, but the gateway must send "developer";
    # refusing it here catches untranslated input.
    if role not in ("user", "assistant", "developer"):
        raise _Invalid(
            f"Invalid value: '{role}' for 'input[{i}].role'. "
            "Supported values are: 'user', 'assistant', and 'developer'."
        )
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _Invalid(f"Invalid type for 'input[{i}].content': expected a string or an array")
    allowed = OUTPUT_PARTS if role == "assistant" else INPUT_PARTS
    for j, part in enumerate(content):
        _check_part(f"input[{i}].content[{j}]", part, allowed)


def _check_part(path: str, part: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(part, dict) or part.get("type") not in allowed:
        kind = part.get("type") if isinstance(part, dict) else None
        supported = ", ".join(f"'{t}'" for t in allowed)
        raise _Invalid(f"Invalid value: '{kind}'. Supported values are: {supported}.")
    kind = part["type"]
    if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
        raise _Invalid(f"Missing required parameter: '{path}.text'.")
    if kind == "input_image" and not isinstance(part.get("image_url") or part.get("file_id"), str):
        raise _Invalid(f"Missing required parameter: '{path}.image_url'.")


def _check_call(i: int, item: dict[str, Any], kind: str, calls: dict[str, str]) -> None:
    call_id = _check_call_id(i, item)
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise _Invalid(f"Missing required parameter: 'input[{i}].name'.")
    payload = "arguments" if kind == "function_call" else "input"
    if not isinstance(item.get(payload), str):
        raise _Invalid(
            f"Invalid type for 'input[{i}].{payload}': expected a string, "
            f"but got {type(item.get(payload)).__name__} instead."
        )
    if call_id in calls:
        raise _Invalid(f"Duplicate call_id in input: {call_id}")
    calls[call_id] = kind


def _check_output(i: int, item: dict[str, Any], calls: dict[str, str], answered: set[str]) -> None:
    call_id = _check_call_id(i, item)
    if call_id not in calls:
        raise _Invalid(f"No tool call found for function call output with call_id {call_id}.")
    output = item.get("output")
    if isinstance(output, list):
        for j, part in enumerate(output):
            _check_part(f"input[{i}].output[{j}]", part, INPUT_PARTS)
    elif not isinstance(output, str):
        raise _Invalid(f"Missing required parameter: 'input[{i}].output'.")
    answered.add(call_id)


def _check_call_id(i: int, item: dict[str, Any]) -> str:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _Invalid(f"Missing required parameter: 'input[{i}].call_id'.")
    if len(call_id) > MAX_ID:
        raise _Invalid(
            f"Invalid 'input[{i}].call_id': string too long. Expected a string with maximum length {MAX_ID}."
        )
    return call_id


def _check_reasoning_item(i: int, item: dict[str, Any]) -> None:
    encrypted = item.get("encrypted_content")
    if encrypted is None:
        # With store=false nothing is kept server-side, so a bare id cannot resolve.
        raise _Invalid(
            f"Item with id '{item.get('id')}' not found. Items are not persisted when `store` is set to false."
        )
    if not is_issued_encrypted_content(encrypted):
        raise _Invalid(f"The encrypted content for item input[{i}] could not be verified.")


# --- tools -----------------------------------------------------------------


def _check_tools(tools: object, path: str = "tools") -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _Invalid(f"Invalid type for '{path}': expected an array")
    for k, tool in enumerate(tools):
        _check_tool(f"{path}[{k}]", tool)


def _check_tool(path: str, tool: object) -> None:
    if not isinstance(tool, dict):
        raise _Invalid(f"Invalid type for '{path}': expected an object")
    kind = tool.get("type")
    if kind in HOSTED_TOOLS:
        return
    if kind not in ("function", "custom", "namespace"):
        raise _Invalid(f"Invalid value: '{kind}' for '{path}.type'.")
    _check_tool_name(path, tool.get("name"))  # a Chat-shaped nested tool has no top-level name
    if kind == "function" and not isinstance(tool.get("parameters", {}), dict):
        raise _Invalid(f"Invalid type for '{path}.parameters': expected an object")
    if kind == "namespace":
        _check_tools(tool.get("tools"), f"{path}.tools")


def _check_tool_name(path: str, name: object) -> None:
    if not isinstance(name, str) or not name:
        raise _Invalid(f"Missing required parameter: '{path}.name'.")
    if len(name) > MAX_NAME:
        raise _Invalid(f"Invalid '{path}.name': string too long. Expected a string with maximum length {MAX_NAME}.")
    if not NAME.match(name):
        raise _Invalid(
            f"Invalid '{path}.name': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
        )


def _check_tool_choice(choice: object) -> None:
    if choice is None or choice in ("auto", "none", "required"):
        return
    if (
        isinstance(choice, dict)
        and choice.get("type") in ("function", "custom")
        and isinstance(choice.get("name"), str)
    ):
        return
    if isinstance(choice, dict) and choice.get("type") in HOSTED_TOOLS:
        return
    raise _Invalid(f"Invalid value for 'tool_choice': {choice!r}")
