"""Codex (Responses API) wire shapes the fake sends (PROTOCOLS.md §3.4, §3.5, §5.8).

Pure builders.  ``output_items()`` turns a ``Reply`` into final output items;
``stream_events()`` expands them into the §3.5 event sequence without
``sequence_number``s, which ``numbered()`` adds last, so a fault that cuts or
replaces events still yields a gap-free count from 0.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .replies import Reply, split_text, stable_id
from .signing import issue_encrypted_content

Event = dict[str, Any]


def output_items(reply: Reply, body: dict[str, Any], seed: str) -> list[dict[str, Any]]:
    """Final output items: reasoning, then the message, then function or custom tool calls."""
    items: list[dict[str, Any]] = []
    if reply.thinking is not None:
        items.append(_reasoning_item(reply.thinking, body, seed))
    if reply.text is not None:
        items.append(_message_item(reply.text, seed))
    for n, call in enumerate(reply.tool_calls):
        if call.custom_input is not None:
            items.append(
                {
                    "id": stable_id("ctc_", seed, n),
                    "type": "custom_tool_call",
                    "status": "completed",
                    "call_id": call.call_id,
                    "name": call.name,
                    "input": call.custom_input,
                }
            )
            continue
        items.append(
            {
                "id": stable_id("fc_", seed, n),
                "type": "function_call",
                "status": "completed",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": json.dumps(call.arguments),
            }
        )
    return items


def _reasoning_item(text: str, body: dict[str, Any], seed: str) -> dict[str, Any]:
    # Like the backend: a summary only when one was asked for, and the
    # encrypted blob only when "reasoning.encrypted_content" is included.
    reasoning = body.get("reasoning") or {}
    wants_summary = reasoning.get("summary") not in (None, "none")
    item: dict[str, Any] = {
        "id": stable_id("rs_", seed),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if wants_summary else [],
    }
    if "reasoning.encrypted_content" in (body.get("include") or []):
        item["encrypted_content"] = issue_encrypted_content(seed)
    return item


def _message_item(text: str, seed: str) -> dict[str, Any]:
    return {
        "id": stable_id("msg_", seed),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def response_object(
    body: dict[str, Any],
    *,
    response_id: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Response object as carried by created/in_progress/completed/failed events."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body.get("model"),
        "output": output,
        "error": error,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "reasoning": body.get("reasoning"),
        "store": False,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "text": body.get("text", {"format": {"type": "text"}}),
        "usage": usage,
    }


def item_events(index: int, item: dict[str, Any]) -> list[Event]:
    """added ... done events for one output item at ``output_index`` = index."""
    kind = item["type"]
    if kind == "reasoning":
        added = dict(item, summary=[])
        added.pop("encrypted_content", None)
        middle = _reasoning_events(index, item)
    elif kind == "message":
        added = dict(item, status="in_progress", content=[])
        middle = _text_events(index, item)
    elif kind == "compaction":
        added, middle = dict(item), []
    elif kind == "custom_tool_call":
        added = dict(item, status="in_progress", input="")
        middle = _custom_input_events(index, item)
    else:
        added = dict(item, status="in_progress", arguments="")
        middle = _argument_events(index, item)
    return [
        {"type": "response.output_item.added", "output_index": index, "item": added},
        *middle,
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


def _reasoning_events(index: int, item: dict[str, Any]) -> list[Event]:
    events: list[Event] = []
    where = {"item_id": item["id"], "output_index": index}
    for s, part in enumerate(item["summary"]):
        at = dict(where, summary_index=s)
        events.append(
            {"type": "response.reasoning_summary_part.added", **at, "part": {"type": "summary_text", "text": ""}}
        )
        events += [
            {"type": "response.reasoning_summary_text.delta", **at, "delta": d} for d in split_text(part["text"])
        ]
        events.append({"type": "response.reasoning_summary_text.done", **at, "text": part["text"]})
        events.append({"type": "response.reasoning_summary_part.done", **at, "part": part})
    return events


def _text_events(index: int, item: dict[str, Any]) -> list[Event]:
    part = item["content"][0]
    at = {"item_id": item["id"], "output_index": index, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": []}
    return [
        {"type": "response.content_part.added", **at, "part": empty},
        *({"type": "response.output_text.delta", **at, "delta": d, "logprobs": []} for d in split_text(part["text"])),
        {"type": "response.output_text.done", **at, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **at, "part": part},
    ]


def _argument_events(index: int, item: dict[str, Any]) -> list[Event]:
    at = {"item_id": item["id"], "output_index": index}
    return [
        *(
            {"type": "response.function_call_arguments.delta", **at, "delta": d}
            for d in split_text(item["arguments"], 2)
        ),
        {"type": "response.function_call_arguments.done", **at, "arguments": item["arguments"], "name": item["name"]},
    ]


def _custom_input_events(index: int, item: dict[str, Any]) -> list[Event]:
    at = {"item_id": item["id"], "output_index": index}
    return [
        *({"type": "response.custom_tool_call_input.delta", **at, "delta": d} for d in split_text(item["input"], 2)),
        {"type": "response.custom_tool_call_input.done", **at, "input": item["input"]},
    ]


def opening_events(shell: dict[str, Any]) -> list[Event]:
    return [
        {"type": "response.created", "response": shell},
        {"type": "response.in_progress", "response": shell},
    ]


def stream_events(
    body: dict[str, Any],
    items: list[dict[str, Any]],
    *,
    response_id: str,
    usage: dict[str, Any],
    empty_output: bool = False,
) -> list[Event]:
    """The whole stream of a successful response, ending in response.completed.

    ``empty_output`` imitates the backend quirk of a completed event whose
    ``output`` is ``[]`` although the items were streamed (§5.7).
    """
    shell = response_object(body, response_id=response_id, status="in_progress", output=[])
    events = opening_events(shell)
    for index, item in enumerate(items):
        events += item_events(index, item)
    final = response_object(
        body, response_id=response_id, status="completed", output=[] if empty_output else items, usage=usage
    )
    events.append({"type": "response.completed", "response": final})
    return events


def failed_events(body: dict[str, Any], *, response_id: str, code: str, message: str) -> list[Event]:
    """created, in_progress, then response.failed carrying ``error.code``."""
    shell = response_object(body, response_id=response_id, status="in_progress", output=[])
    error = {"code": code, "message": message}
    failed = response_object(body, response_id=response_id, status="failed", output=[], error=error)
    return [*opening_events(shell), {"type": "response.failed", "response": failed}]


def numbered(events: list[Event]) -> list[Event]:
    """Add ``sequence_number`` 0, 1, 2, ... right after ``type``."""
    return [
        {"type": e["type"], "sequence_number": n, **{k: v for k, v in e.items() if k != "type"}}
        for n, e in enumerate(events)
    ]
