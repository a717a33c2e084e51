"""The benchmark upstream's fixed answers, in the real wire formats (PROTOCOLS.md).

An Anthropic Messages JSON answer, the same answer as an SSE stream of 50
events, and a Codex (Responses) SSE stream of 50 events. nginx serves them as
they are, so the canned upstream costs next to nothing and is never the
bottleneck.
"""
from __future__ import annotations

import json
from typing import Any

MODEL = "claude-sonnet-4-6"
CODEX_MODEL = "gpt-5.5"
STREAM_EVENTS = 50
USAGE = {"input_tokens": 12, "output_tokens": 45, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def anthropic_message() -> bytes:
    """A non-streaming /v1/messages answer."""
    return _dumps({
        "id": "msg_01BenchCannedAnswer", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "Hello from the benchmark upstream."}],
        "stop_reason": "end_turn", "stop_sequence": None, "usage": USAGE,
    }).encode()


def anthropic_stream(events: int = STREAM_EVENTS) -> bytes:
    """message_start, ping, a text block of ``events - 6`` deltas, message_delta, message_stop."""
    deltas = events - 6
    start = {"type": "message_start", "message": {
        "id": "msg_01BenchCannedStream", "type": "message", "role": "assistant", "model": MODEL, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {**USAGE, "output_tokens": 1}}}
    sequence: list[dict[str, Any]] = [
        start,
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"word{i} "}}
          for i in range(deltas)),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": deltas}},
        {"type": "message_stop"},
    ]
    return b"".join(f"event: {e['type']}\ndata: {_dumps(e)}\n\n".encode() for e in sequence)


def codex_stream(events: int = STREAM_EVENTS) -> bytes:
    """A Codex backend /responses stream: created, in_progress, one message of ``events - 8`` deltas, completed."""
    deltas = events - 8
    text = "".join(f"word{i} " for i in range(deltas))
    response = {"id": "resp_bench", "object": "response", "created_at": 1764000000, "status": "in_progress",
                "model": CODEX_MODEL, "output": [], "usage": None}
    item = {"id": "msg_bench", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    done_part = {**part, "text": text}
    done_item = {**item, "status": "completed", "content": [done_part]}
    usage = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": deltas,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12 + deltas}
    sequence: list[dict[str, Any]] = [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", "item_id": "msg_bench", "output_index": 0, "content_index": 0,
         "part": part},
        *({"type": "response.output_text.delta", "item_id": "msg_bench", "output_index": 0, "content_index": 0,
           "delta": f"word{i} "} for i in range(deltas)),
        {"type": "response.output_text.done", "item_id": "msg_bench", "output_index": 0, "content_index": 0,
         "text": text},
        {"type": "response.content_part.done", "item_id": "msg_bench", "output_index": 0, "content_index": 0,
         "part": done_part},
        {"type": "response.output_item.done", "output_index": 0, "item": done_item},
        {"type": "response.completed", "response": {**response, "status": "completed", "output": [done_item],
                                                    "usage": usage}},
    ]
    return b"".join(f"event: {e['type']}\ndata: {_dumps({**e, 'sequence_number': n})}\n\n".encode()
                    for n, e in enumerate(sequence))


BODIES = {
    "claude.json": anthropic_message,
    "claude.sse": anthropic_stream,
    "codex.sse": codex_stream,
}
