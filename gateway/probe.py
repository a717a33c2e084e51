"""A tiny real request on one credential: the admin's "test" action."""
from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
from asgiref.sync import async_to_sync
from django.conf import settings

from credentials.models import Credential
from gateway.formats.sse import SSEParser
from gateway.upstream import codex_body
from gateway.upstream.client import new_session
from gateway.upstream.registry import UPSTREAMS

PROBES = {
    "claude": {"model": "claude-haiku-4-5-20251001", "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]},
    "codex": {"model": "gpt-5.4-mini", "input": "ping", "reasoning": {"effort": "low"}},
}


@dataclass
class ProbeResult:
    ok: bool
    status: int
    message: str
    seconds: float


def probe(credential: Credential) -> ProbeResult:
    """Send the smallest useful request with ``credential`` (no refresh, no retry) and report."""
    return async_to_sync(_aprobe)(credential)


async def _aprobe(credential: Credential) -> ProbeResult:
    upstream = UPSTREAMS[credential.provider]
    body = PROBES[credential.provider]
    if credential.provider == "codex":
        body = codex_body.prepare(body)
    call = upstream.call(credential, body, {}, session_seed="probe")
    timeout = aiohttp.ClientTimeout(total=60, connect=settings.PROXYHUB_CONNECT_TIMEOUT)
    started = time.monotonic()
    # A session of its own: this runs on a short-lived loop of async_to_sync.
    async with new_session(credential.proxy_url) as session:
        try:
            async with session.post(call.url, data=call.body, headers=call.headers, timeout=timeout) as response:
                raw = await response.read()
                status = response.status
                headers = response.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return ProbeResult(False, 0, f"unreachable ({type(exc).__name__})", time.monotonic() - started)
    elapsed = time.monotonic() - started
    if status >= 400:
        error = upstream.classify(status, headers, raw)
        return ProbeResult(False, status, error.message, elapsed)
    if credential.provider == "codex" and not any(e.event == "response.completed" for e in SSEParser().feed(raw)):
        return ProbeResult(False, status, "stream ended without response.completed", elapsed)
    return ProbeResult(True, status, "answered", elapsed)
