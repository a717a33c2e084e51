"""The benchmark's yardstick: the least a proxy on ProxyHub's stack can do.

A raw ASGI app with one shared aiohttp session per worker: read the body, POST
it to $BENCH_UPSTREAM + path, stream the answer back. No auth, pool, usage or
translation, so ProxyHub's throughput over this one's is the price of its features.
"""
from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ["BENCH_UPSTREAM"]
FORWARDED = (b"content-type", b"accept", b"anthropic-version")
_session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _session
    if scope["type"] == "lifespan":  # the production command runs with --lifespan on
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        return await send({"type": "lifespan.shutdown.complete"})
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=False)
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARDED}
    url = UPSTREAM + scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
    async with _session.post(url, data=body, headers=headers) as r:
        await send({"type": "http.response.start", "status": r.status,
                    "headers": [(b"content-type", r.headers.get("content-type", "").encode())]})
        async for chunk in r.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
