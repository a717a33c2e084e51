"""Tool names and call ids the upstreams accept, and the client's names back (PROTOCOLS.md §6.11 item 7). Pure.

Both upstreams refuse tool names over 64 characters (Claude also anything but
``[A-Za-z0-9_-]``), and MCP clients easily exceed that::

    mcp__github_enterprise_server__search_pull_requests_by_label_and_milestone  (74)
    -> mcp__search_pull_requests_by_label_and_milestone

On the way up a request's names are shortened (:func:`shorten_tool_names`,
deterministically, so the same names always give the same map); on the way
back the reply's names are looked up in the inverted map
(:func:`restoring_tool_names`), rebuilt from the client's request. For that the
client's names must be met in the order the upstream body lists them:
:func:`responses_tool_names` for the Responses body sent to Codex,
:func:`chat_tool_names` and :func:`anthropic_tool_names` for the client bodies
translated into it. :class:`ToolNames` is the same for Claude.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Iterable, Iterator

TOOL_NAME_LIMIT = 64
# Responses items that name a tool and carry a call_id.
CALL_ITEM_TYPES = ("function_call", "custom_tool_call")
_NAMED_TOOL_TYPES = ("function", "custom")
_NOT_FOR_CLAUDE = re.compile(r"[^A-Za-z0-9_-]")


def shorten_tool_names(names: Iterable[str]) -> dict[str, str]:
    """Map every name to one of at most 64 characters, deterministically.

    Short names map to themselves and are never taken by a shortened one.
    ``mcp__server__tool`` names keep the ``mcp__`` prefix and the last
    segment; clashes get ``_1``, ``_2``... Invert the result to map a
    model's call back to the client's name. The same names in the same
    order always give the same map.

    >>> shorten_tool_names(["mcp__" + "s" * 70 + "__read", "ls"])["mcp__" + "s" * 70 + "__read"]
    'mcp__read'
    """
    unique = list(dict.fromkeys(names))
    taken = {n for n in unique if len(n) <= TOOL_NAME_LIMIT}
    result: dict[str, str] = {}
    for name in unique:
        if len(name) <= TOOL_NAME_LIMIT:
            result[name] = name
            continue
        base = short = _short_base(name)
        n = 0
        while short in taken:
            n += 1
            suffix = f"_{n}"
            short = base[: TOOL_NAME_LIMIT - len(suffix)] + suffix
        taken.add(short)
        result[name] = short
    return result


def _short_base(name: str) -> str:
    if name.startswith("mcp__"):
        last = name.rsplit("__", 1)[-1]
        if last:
            return ("mcp__" + last)[:TOOL_NAME_LIMIT]
    return name[:TOOL_NAME_LIMIT]


def restoring_tool_names(names: Iterable[str]) -> dict[str, str]:
    """Name sent upstream -> the client's name: shorten_tool_names() inverted, for replies."""
    return {short: name for name, short in shorten_tool_names(names).items()}


def shorten_call_id(call_id: str) -> str:
    """Hash a call id over 64 characters down to a stable ``call_<40 hex>``."""
    if len(call_id) <= TOOL_NAME_LIMIT:
        return call_id
    return "call_" + hashlib.sha256(call_id.encode()).hexdigest()[:40]


# -- the Responses body sent to Codex ---------------------------------------------------

def responses_tool_names(body: dict[str, Any]) -> Iterator[str]:
    """Declared tool names first, then names in the history, then tool_choice."""
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") in _NAMED_TOOL_TYPES and isinstance(tool.get("name"), str):
            yield tool["name"]
    input_value = body.get("input")
    for item in input_value if isinstance(input_value, list) else []:
        if isinstance(item, dict) and item.get("type") in CALL_ITEM_TYPES and isinstance(item.get("name"), str):
            yield item["name"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        yield choice["name"]


def tool_name_map(body: dict[str, Any]) -> dict[str, str]:
    """Client tool name -> name sent upstream, as :func:`with_short_names` applies it.

    Invert it to restore names in a reply (only names over 64 characters change).
    """
    return shorten_tool_names(responses_tool_names(body))


def with_short_names(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (a Responses request with a list ``input``) with over-long tool names shortened.

    Returns ``body`` itself when every name fits; otherwise a copy that shares what it did not rename.
    """
    names = tool_name_map(body)
    if all(k == v for k, v in names.items()):
        return body
    out = dict(body)
    if isinstance(out.get("tools"), list):
        out["tools"] = [_renamed(t, names) if isinstance(t, dict) and t.get("type") in _NAMED_TOOL_TYPES else t
                        for t in out["tools"]]
    out["input"] = [_renamed(i, names) if i.get("type") in CALL_ITEM_TYPES else i for i in out["input"]]
    if isinstance(out.get("tool_choice"), dict):
        out["tool_choice"] = _renamed(out["tool_choice"], names)
    return out


def _renamed(obj: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    name = obj.get("name")
    if not isinstance(name, str) or names.get(name, name) == name:
        return obj
    return {**obj, "name": names[name]}


def renamed_back(client_body: dict[str, Any]) -> dict[str, str]:
    """Shortened name -> the client's name, for the names of a Responses request that changed."""
    return {short: name for name, short in tool_name_map(client_body).items() if short != name}


def with_client_names(obj: Any, reverse: dict[str, str]) -> Any:
    """``obj`` (a reply, an event) with every call item's upstream name replaced by the client's name."""
    if isinstance(obj, list):
        return [with_client_names(v, reverse) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: with_client_names(v, reverse) for k, v in obj.items()}
    if out.get("type") in CALL_ITEM_TYPES and out.get("name") in reverse:
        out["name"] = reverse[out["name"]]
    return out


# -- client bodies translated into one for Codex ----------------------------------------

def chat_tool_names(body: dict[str, Any]) -> Iterator[str]:
    """A Chat request's tool names in the order :func:`responses_tool_names` meets them once translated.

    Feed them to :func:`restoring_tool_names` to map a reply's names back to the client's.
    """
    for tool in body.get("tools") or []:
        kind = (tool.get("type") or "function") if isinstance(tool, dict) else None
        spec = tool.get(kind) if kind in ("function", "custom") else None
        if isinstance(spec, dict) and spec.get("name"):
            yield spec["name"]
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                spec = call.get(call.get("type") or "function") or {}
                if spec.get("name"):
                    yield spec["name"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        spec = choice.get(choice.get("type") or "function")
        if isinstance(spec, dict) and spec.get("name"):
            yield spec["name"]


def anthropic_tool_names(body: dict[str, Any]) -> Iterator[str]:
    """An Anthropic request's tool names in the order :func:`responses_tool_names` meets them once translated."""
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") in (None, "custom") and tool.get("name"):
            yield tool["name"]
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("name"):
                yield block["name"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" and choice.get("name"):
        yield choice["name"]


# -- Claude ----------------------------------------------------------------------------

class ToolNames:
    """Client tool names <-> names Anthropic accepts (``[A-Za-z0-9_-]``, at most 64 chars).

    Names that already fit map to themselves; others are cleaned and shortened
    (:func:`shorten_tool_names`) and mapped back in responses.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._up: dict[str, str] = {}
        self._down: dict[str, str] = {}
        unique = list(dict.fromkeys(names))
        shortened = shorten_tool_names(_clean_name(n) for n in unique)
        for name in unique:
            up = base = shortened[_clean_name(name)]
            n = 0
            while up in self._down:
                n += 1
                up = f"{base[:TOOL_NAME_LIMIT - len(str(n)) - 1]}_{n}"
            self._up[name], self._down[up] = up, name

    def upstream(self, name: str) -> str:
        return self._up.get(name) or _clean_name(name)[:TOOL_NAME_LIMIT]

    def client(self, name: str) -> str:
        return self._down.get(name, name)


def _clean_name(name: str) -> str:
    return _NOT_FOR_CLAUDE.sub("_", name) or "tool"
