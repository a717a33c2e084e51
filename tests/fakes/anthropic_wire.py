"""Anthropic Messages wire shapes the fake sends (PROTOCOLS.md §1.6, §1.8, §1.9).

Pure builders: a ``Reply`` goes in, a response object or the ordered list of
SSE event payloads comes out.  The app decides how (and whether fully) to
write them, which is where faults cut streams short.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from .replies import Reply, split_text
from .signing import sign_thinking

Event = dict[str, Any]


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """The error envelope, used as HTTP body and as stream ``error`` data."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": new_id("req_011C"),
    }


def content_blocks(reply: Reply) -> list[dict[str, Any]]:
    """Final content blocks: thinking, then text, then tool_use."""
    blocks: list[dict[str, Any]] = []
    if reply.thinking is not None:
        blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": sign_thinking(reply.thinking)})
    if reply.text is not None:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        blocks.append({"type": "tool_use", "id": call.call_id, "name": call.name, "input": call.arguments})
    return blocks


def stop_reason(reply: Reply) -> str:
    if reply.tool_calls:
        return "tool_use"
    return "max_tokens" if reply.truncated else "end_turn"


def message_json(reply: Reply, *, message_id: str, model: str, usage: dict[str, int]) -> dict[str, Any]:
    """Non-streaming response object (§1.6)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(reply),
        "stop_reason": stop_reason(reply),
        "stop_sequence": None,
        "usage": usage,
    }


def message_start(*, message_id: str, model: str, usage: dict[str, int]) -> Event:
    # The opening usage has the input and cache counts and a token of output.
    start_usage = dict(usage, output_tokens=1)
    shell: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    return {"type": "message_start", "message": shell}


def _block_events(index: int, block: dict[str, Any]) -> list[Event]:
    kind = block["type"]
    if kind == "thinking":
        empty: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": t} for t in split_text(block["thinking"]) if t]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        empty = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in split_text(block["text"])]
    else:
        empty = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        fragments = split_text(json.dumps(block["input"]), parts=2)
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
    events: list[Event] = [{"type": "content_block_start", "index": index, "content_block": empty}]
    events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
    events.append({"type": "content_block_stop", "index": index})
    return events


def stream_events(reply: Reply, *, message_id: str, model: str, usage: dict[str, int]) -> list[Event]:
    """All events of a streamed reply, in the exact order of §1.8.

    A ``ping`` follows the first content_block_start, as the real API does.
    The closing ``message_delta`` usage is cumulative (input and cache counts too).
    """
    events = [message_start(message_id=message_id, model=model, usage=usage)]
    for index, block in enumerate(content_blocks(reply)):
        block_events = _block_events(index, block)
        if index == 0:
            block_events.insert(1, {"type": "ping"})
        events += block_events
    delta = {"stop_reason": stop_reason(reply), "stop_sequence": None}
    events.append({"type": "message_delta", "delta": delta, "usage": usage})
    events.append({"type": "message_stop"})
    return events
