"""Raw Codex SSE text (PROTOCOLS.md §3.5) for the stream translator tests.

Item builders return the event list of one output item; ``stream()`` wraps
them in ``response.created`` / ``in_progress`` and a terminal event, numbers
them and renders SSE text. ``events_from()`` splits that text into random
byte chunks and parses it back with SSEParser, as the relay would.
"""
from __future__ import annotations

import json
from typing import Any

from gateway.formats.sse import Event, SSEParser
from tests.translate.chunked import events_from  # noqa: F401  (re-exported for the tests)

Obj = dict[str, Any]

USAGE = {"input_tokens": 2460, "input_tokens_details": {"cached_tokens": 2048}, "output_tokens": 97,
         "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 2557}


def reasoning(index: int, item_id: str, summaries: list[list[str]], encrypted: str | None = "gAAAAB-enc") -> list[Obj]:
    """A reasoning item whose summary parts stream as the given deltas."""
    events: list[Obj] = [{"type": "response.output_item.added", "output_index": index,
                          "item": {"id": item_id, "type": "reasoning", "summary": []}}]
    for n, deltas in enumerate(summaries):
        base = {"item_id": item_id, "output_index": index, "summary_index": n}
        text = "".join(deltas)
        events.append({"type": "response.reasoning_summary_part.added", **base,
                       "part": {"type": "summary_text", "text": ""}})
        events += [{"type": "response.reasoning_summary_text.delta", **base, "delta": d} for d in deltas]
        events.append({"type": "response.reasoning_summary_text.done", **base, "text": text})
        events.append({"type": "response.reasoning_summary_part.done", **base,
                       "part": {"type": "summary_text", "text": text}})
    item: Obj = {"id": item_id, "type": "reasoning",
                 "summary": [{"type": "summary_text", "text": "".join(d)} for d in summaries]}
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def message(index: int, item_id: str, deltas: list[str]) -> list[Obj]:
    """An assistant message with one output_text part streamed as ``deltas``."""
    base = {"item_id": item_id, "output_index": index, "content_index": 0}
    text = "".join(deltas)
    part = {"type": "output_text", "text": text, "annotations": []}
    return [
        {"type": "response.output_item.added", "output_index": index,
         "item": {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
        {"type": "response.content_part.added", **base, "part": {"type": "output_text", "text": "", "annotations": []}},
        *({"type": "response.output_text.delta", **base, "delta": d, "logprobs": []} for d in deltas),
        {"type": "response.output_text.done", **base, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **base, "part": part},
        {"type": "response.output_item.done", "output_index": index,
         "item": {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}},
    ]


def function_call(index: int, item_id: str, call_id: str, name: str, deltas: list[str],
                  full: str | None = None) -> list[Obj]:
    """A function call whose arguments stream as ``deltas`` (``full`` when none stream)."""
    arguments = "".join(deltas) if full is None else full
    base = {"item_id": item_id, "output_index": index}
    head = {"id": item_id, "type": "function_call", "status": "in_progress", "call_id": call_id, "name": name,
            "arguments": ""}
    return [
        {"type": "response.output_item.added", "output_index": index, "item": head},
        *({"type": "response.function_call_arguments.delta", **base, "delta": d} for d in deltas),
        {"type": "response.function_call_arguments.done", **base, "arguments": arguments, "name": name},
        {"type": "response.output_item.done", "output_index": index,
         "item": {**head, "status": "completed", "arguments": arguments}},
    ]


def custom_call(index: int, item_id: str, call_id: str, name: str, deltas: list[str]) -> list[Obj]:
    """A freeform (custom tool) call, e.g. Codex's apply_patch."""
    base = {"item_id": item_id, "output_index": index}
    head = {"id": item_id, "type": "custom_tool_call", "status": "in_progress", "call_id": call_id, "name": name,
            "input": ""}
    return [
        {"type": "response.output_item.added", "output_index": index, "item": head},
        *({"type": "response.custom_tool_call_input.delta", **base, "delta": d} for d in deltas),
        {"type": "response.custom_tool_call_input.done", **base, "input": "".join(deltas)},
        {"type": "response.output_item.done", "output_index": index,
         "item": {**head, "status": "completed", "input": "".join(deltas)}},
    ]


def done_items(events: list[Obj]) -> list[Obj]:
    return [e["item"] for e in events if e["type"] == "response.output_item.done"]


def stream(items: list[Obj], *, terminal: str = "response.completed", response_id: str = "resp_01",
           model: str = "gpt-5-codex", usage: Obj | None = None, output: list[Obj] | None = None,
           extra: Obj | None = None) -> str:
    """Full SSE text: created, in_progress, the item events, then ``terminal``.

    ``terminal`` is ``response.completed``, ``response.incomplete``,
    ``response.failed`` (``extra`` holds its ``error``), ``error`` (``extra``
    is the event body) or ``""`` for a stream that just stops.
    """
    shell: Obj = {"id": response_id, "object": "response", "created_at": 1767225600, "model": model,
                  "status": "in_progress", "output": []}
    events: list[Obj] = [{"type": "response.created", "response": shell},
                         {"type": "response.in_progress", "response": shell}, *items]
    final: Obj = {**shell, "output": done_items(items) if output is None else output,
                  "usage": USAGE if usage is None else usage}
    if terminal == "response.completed":
        events.append({"type": terminal, "response": {**final, "status": "completed"}})
    elif terminal == "response.incomplete":
        events.append({"type": terminal, "response": {**final, "status": "incomplete",
                                                      "incomplete_details": {"reason": "max_output_tokens"}}})
    elif terminal == "response.failed":
        events.append({"type": terminal, "response": {**final, "status": "failed", **(extra or {})}})
    elif terminal == "error":
        events.append({"type": "error", **(extra or {})})
    return render(events)


def render(events: list[Obj]) -> str:
    return "".join(
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': n})}\n\n" for n, e in enumerate(events))


def run(translator: Any, text: str, seed: int = 0, finish: bool = True) -> bytes:
    """Feed every event to ``translator`` and return all bytes it produced."""
    out: list[bytes] = []
    for event in events_from(text, seed):
        out += translator.feed(event)
    if finish:
        out += translator.finish()
    return b"".join(out)


def client_events(output: bytes) -> list[Event]:
    return list(SSEParser().feed(output))
