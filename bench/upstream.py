"""A minimal, fast fake Claude upstream for the benchmark (no validation, canned answers)."""
from __future__ import annotations

import json
import sys

from aiohttp import web

MESSAGE = json.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Hello from the benchmark upstream."}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
}).encode()

EVENTS = [
    ("message_start", {"type": "message_start", "message": {**json.loads(MESSAGE), "content": [], "stop_reason": None,
                                                            "usage": {"input_tokens": 12, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    *[("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"word{i} "}})
      for i in range(20)],
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 21}}),
    ("message_stop", {"type": "message_stop"}),
]
STREAM = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in EVENTS)


async def messages(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if body.get("stream"):
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(STREAM)
        await response.write_eof()
        return response
    return web.Response(body=MESSAGE, content_type="application/json")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
