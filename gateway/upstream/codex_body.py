"""Body rules for the ChatGPT Codex backend (PROTOCOLS.md §5.6).

``prepare()`` takes any Responses request (from a Responses client, or from a
translator) and returns the body the backend accepts::

    >>> prepare({"model": "gpt-5-codex", "input": "List files", "temperature": 0.2})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'model': 'gpt-5-codex', 'input': [{'type': 'message', 'role': 'user',
      'content': [{'type': 'input_text', 'text': 'List files'}]}],
     'instructions': '', 'stream': True, 'store': False,
     'include': ['reasoning.encrypted_content'], 'parallel_tool_calls': True,
     'reasoning': {'effort': 'medium', 'summary': 'auto'}}

Pure: stdlib and gateway.translate only.
"""
from __future__ import annotations

from typing import Any

from gateway.translate.chat_to_responses import text_options
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import ANTHROPIC_SIGNATURE_PREFIX
from gateway.translate.responses_output import REDACTED_PREFIX
from gateway.translate.tool_names import CALL_ITEM_TYPES, shorten_call_id, with_short_names

ENCRYPTED_REASONING = "reasoning.encrypted_content"

# Claude thinking handed to a Responses client as encrypted_content
# (responses_output.py); the Codex backend cannot decrypt it.
CLAUDE_BLOB_PREFIXES = (ANTHROPIC_SIGNATURE_PREFIX, REDACTED_PREFIX)

# Fields the backend rejects ("Unsupported parameter: ...") or that only make
# sense with server-side state, which store:false rules out.
FORBIDDEN_FIELDS = (
    "max_output_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "truncation",
    "user",
    "safety_identifier",
    "prompt_cache_retention",
    "stream_options",
    "metadata",
    "max_tool_calls",
    "client_metadata",
    "background",
)


def prepare(body: dict[str, Any], *, hoist_instructions: bool = False) -> dict[str, Any]:
    """Return a copy of ``body`` that follows the Codex body rules.

    ``hoist_instructions`` moves text-only system/developer messages into
    ``instructions`` instead of leaving them as developer input messages.
    Raises TranslationError for ``previous_response_id`` (there is no server
    state with ``store: false``). Tool names and call ids over 64 characters
    are shortened (``translate/tool_names.py``, which also maps them back in
    replies). Unchanged nested values are shared, not copied.
    """
    if body.get("previous_response_id"):
        raise TranslationError(
            "previous_response_id is not supported: resend the conversation in input",
            param="previous_response_id",
        )
    out = {k: v for k, v in body.items() if k not in FORBIDDEN_FIELDS and k != "previous_response_id"}
    if "response_format" in out:
        # Chat's spelling, which SDK wrappers send to /responses too; the backend refuses it.
        mapped = text_options({"response_format": out.pop("response_format")})
        if mapped and not (out.get("text") or {}).get("format"):
            out["text"] = {**(out.get("text") or {}), **mapped}
    if out.get("service_tier") != "priority":
        out.pop("service_tier", None)
    items = [_clean_item(item) for item in _input_items(body.get("input"))]
    items = _unique_call_ids([item for item in items if _keep_item(item)])
    instructions = body.get("instructions") or ""
    if hoist_instructions:
        instructions, items = _hoist(instructions, items)
    out["input"] = items
    out["instructions"] = instructions
    out["stream"] = True
    out["store"] = False
    out["include"] = _include(body.get("include"))
    out.setdefault("parallel_tool_calls", True)
    out["reasoning"] = _reasoning(body.get("reasoning"))
    return with_short_names(out)


def prepare_compact(body: dict[str, Any]) -> dict[str, Any]:
    """The body for ``/responses/compact``: the same rules, but the endpoint answers
    one JSON object and refuses the streaming and storage fields."""
    out = prepare(body)
    for name in ("stream", "store", "include"):
        out.pop(name, None)
    return out


def _input_items(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise TranslationError("input must be a string or an array of items", param="input")
    return [item for item in value if isinstance(item, dict)]


def _clean_item(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    kind = out.get("type")
    if kind != "reasoning":
        # Ids of items that were never stored can fail on a store:false endpoint.
        out.pop("id", None)
    if out.get("role") == "system":
        out["role"] = "developer"
    if isinstance(out.get("call_id"), str):
        out["call_id"] = shorten_call_id(out["call_id"])
    return out


def _unique_call_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give a reused call id (some Chat clients number calls per turn: call_0, call_0 ...)
    a fresh suffix; each output follows the latest call of its id. Codex rejects duplicates."""
    seen: dict[str, int] = {}
    current: dict[str, str] = {}
    out = []
    for item in items:
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            out.append(item)
            continue
        if item.get("type") in CALL_ITEM_TYPES:
            seen[call_id] = seen.get(call_id, 0) + 1
            current[call_id] = call_id if seen[call_id] == 1 else shorten_call_id(f"{call_id}_{seen[call_id]}")
        renamed = current.get(call_id, call_id)
        out.append(item if renamed == call_id else {**item, "call_id": renamed})
    return out


def _keep_item(item: dict[str, Any]) -> bool:
    if item.get("type") != "reasoning":
        return True
    blob = item.get("encrypted_content")
    # Without its own blob the backend cannot use the item.
    return isinstance(blob, str) and bool(blob) and not blob.startswith(CLAUDE_BLOB_PREFIXES)


def _hoist(instructions: str, items: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    texts = [instructions] if instructions else []
    kept: list[dict[str, Any]] = []
    for item in items:
        text = _instruction_text(item)
        if text is None:
            kept.append(item)
        elif text:
            texts.append(text)
    return "\n\n".join(texts), kept


def _instruction_text(item: dict[str, Any]) -> str | None:
    """The text of a text-only developer message, else None (keep the item)."""
    if item.get("type", "message") != "message" or item.get("role") != "developer":
        return None
    content = item.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    if not all(isinstance(p, dict) and p.get("type") in ("input_text", "text") for p in content):
        return None
    return "\n\n".join(str(p.get("text") or "") for p in content if p.get("text"))


def _include(value: Any) -> list[Any]:
    include = list(value) if isinstance(value, list) else []
    if ENCRYPTED_REASONING not in include:
        include.append(ENCRYPTED_REASONING)
    return include


def _reasoning(value: Any) -> dict[str, Any]:
    reasoning = dict(value) if isinstance(value, dict) else {}
    if not reasoning.get("effort"):
        reasoning["effort"] = "medium"
    if not reasoning.get("summary"):
        reasoning["summary"] = "auto"
    return reasoning
