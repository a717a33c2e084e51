"""The shared upstream HTTP clients: one per process and event loop, plus one per outbound proxy.

aiohttp, not httpx, on the relay path: measured in DESIGN.md step 7, httpx's
async pool caps a pass-through proxy at ~570 req/s where aiohttp reaches ~8,000.
Created lazily inside the running loop because daphne has no lifespan hook.
A credential with a ``proxy_url`` gets a session whose connector goes through
that proxy (HTTP or SOCKS, via aiohttp-socks), shared by every credential that
names the same proxy.
"""
from __future__ import annotations

import asyncio

import aiohttp
from aiohttp_socks import ProxyConnector
from django.conf import settings

_sessions: dict[tuple[asyncio.AbstractEventLoop, str], aiohttp.ClientSession] = {}


def session(proxy_url: str = "") -> aiohttp.ClientSession:
    key = (asyncio.get_running_loop(), proxy_url)
    s = _sessions.get(key)
    if s is None or s.closed:
        s = new_session(proxy_url)
        _sessions[key] = s
    return s


def new_session(proxy_url: str = "") -> aiohttp.ClientSession:
    """A session configured like the shared ones; the caller owns and closes it."""
    limits = {"limit": settings.PROXYHUB_UPSTREAM_CONNECTIONS, "limit_per_host": 0, "ttl_dns_cache": 300}
    connector = ProxyConnector.from_url(proxy_url, **limits) if proxy_url else aiohttp.TCPConnector(**limits)
    timeout = aiohttp.ClientTimeout(
        total=None, connect=settings.PROXYHUB_CONNECT_TIMEOUT, sock_read=settings.PROXYHUB_READ_TIMEOUT
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


async def close_sessions() -> None:
    """Close the clients of the running loop (tests and shutdown)."""
    loop = asyncio.get_running_loop()
    for key in [k for k in _sessions if k[0] is loop]:
        await _sessions.pop(key).close()
