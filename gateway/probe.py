"""A tiny real request on one credential: the admin's "test" action."""
from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
from asgiref.sync import async_to_sync
from django.conf import settings

from credentials.models import Credential, Model
from gateway.formats.sse import SSEParser
from gateway.upstream.client import new_session
from gateway.upstream.registry import UPSTREAMS

PROBES = {
    "claude": {"max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]},
    "codex": {"input": "ping", "reasoning": {"effort": "low"}},
}
CHEAP_MARKERS = ("haiku", "mini")  # the cheapest model of a family, by name


def probe_model(provider: str) -> str:
    """The catalog's cheapest-looking enabled model of ``provider``: the catalog changes without a release."""
    names = list(Model.objects.filter(provider=provider, enabled=True).order_by("name").values_list("name", "upstream_id"))
    if not names:
        raise LookupError(f"no enabled {provider} model in the catalog")
    name, upstream_id = next((n for n in names if any(m in n[0] for m in CHEAP_MARKERS)), names[0])
    return upstream_id or name


@dataclass
class ProbeResult:
    ok: bool
    status: int
    message: str
    seconds: float


def probe(credential: Credential) -> ProbeResult:
    """Send the smallest useful request with ``credential`` (no refresh, no retry) and report."""
    try:
        model = probe_model(credential.provider)
    except LookupError as exc:
        return ProbeResult(False, 0, str(exc), 0.0)
    return async_to_sync(_aprobe)(credential, model)


async def _aprobe(credential: Credential, model: str) -> ProbeResult:
    upstream = UPSTREAMS[credential.provider]
    body = {**PROBES[credential.provider], "model": model}
    prepared = upstream.prepare(body, endpoint="probe", client_headers={}, thinking="", adaptive=False,
                                session_seed="probe")
    call = upstream.call(credential, prepared)
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
