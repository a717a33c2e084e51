"""The one shared upstream HTTP client per process (and per event loop).

aiohttp, not httpx, on the relay path: measured in DESIGN.md step 7, httpx's
async pool caps a pass-through proxy at ~570 req/s where aiohttp reaches ~8,000.
Created lazily inside the running loop because daphne has no lifespan hook.
"""
from __future__ import annotations

import asyncio

import aiohttp
from django.conf import settings

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    s = _sessions.get(loop)
    if s is None or s.closed:
        connector = aiohttp.TCPConnector(
            limit=settings.PROXYHUB_UPSTREAM_CONNECTIONS, limit_per_host=0, ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.PROXYHUB_CONNECT_TIMEOUT, sock_read=settings.PROXYHUB_READ_TIMEOUT
        )
        # auto_decompress off would forward gzip bytes verbatim; we need the text to translate it.
        s = aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)
        _sessions[loop] = s
    return s


async def close_sessions() -> None:
    """Close the clients of the running loop (tests and shutdown)."""
    loop = asyncio.get_running_loop()
    s = _sessions.pop(loop, None)
    if s is not None:
        await s.close()
