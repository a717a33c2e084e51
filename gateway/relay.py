"""One generation request: translate, pick a credential, call upstream, relay back.

    relay(job, send)
      _translated()        the client's body in the upstream's format (gateway.translate)
      upstream.prepare()   the upstream's own body rules, once (gateway.upstream.<provider>)
      _open()              credentials in turn: _call() -> _post(), _vetted(); each failure an UpstreamError
      _deliver()           a stream, an aggregated stream or one body; the usage row before the last byte

Retries happen only before the first byte reaches the client (PROTOCOLS.md
§6.11.12): 401 refreshes the token once; rate limits, overload and network
errors cool the credential down and move to the next one, a bounded number
of times. A request that cannot be served is raised as a RefusalError for the
caller to answer. After the first byte, a failure becomes an error event.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp
from django.conf import settings

from accounts.models import ApiKey
from credentials import alerts
from credentials.models import Credential
from credentials.refresh import RefreshError, arefresh
from gateway import fastjson, pool, refusals
from gateway.catalog import Entry
from gateway.formats.conversation import conversation_key
from gateway.formats.meter import UsageMeter
from gateway.formats.responses_aggregate import ResponseAggregator, UpstreamStreamError
from gateway.formats.sse import KEEPALIVE, SSEParser
from gateway.formats.stream_errors import stream_error
from gateway.http import Request, Send, send_bytes, send_json, start_stream
from gateway.refusals import RefusalError
from gateway.routes import Route, route_for
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import Target
from gateway.upstream.base import (
    CredentialUnusableError, Prepared, Upstream, UpstreamAuthError, UpstreamCall, UpstreamError,
    UpstreamRateLimitedError, UpstreamRejectedError, UpstreamUnavailableError,
)
from gateway.upstream.client import session
from gateway.upstream.registry import UPSTREAMS
from gateway.usage.rows import Outcome, UsageRow
from gateway.usage.writer import note_credential_use, record_usage

logger = logging.getLogger(__name__)

# The upstream's own request id, for its support; x-request-id on our responses is ours (or the client's),
# so an upstream x-request-id (OpenAI's) is passed as x-upstream-request-id.
PASSED_HEADERS = {"request-id": "request-id", "x-request-id": "x-upstream-request-id"}
PEEK_LIMIT = 64 * 1024  # never hold back more than this while vetting a stream
PROVIDER_NAMES = {"claude": "Claude", "codex": "ChatGPT (Codex)"}


@dataclass
class Job:
    request: Request
    client_format: str
    endpoint: str
    body: dict[str, Any]
    api_key: ApiKey
    entry: Entry
    stream: bool
    record: UsageRow
    started: float
    thinking: str = ""  # a thinking level given in the model name, e.g. "high" from "gpt-5.5(high)"
    recorded: bool = False  # its usage row went to the writer (always before the answer's last byte)


@dataclass
class Opened:
    """An upstream response that passed its status check, and the bytes read to vet its stream."""

    response: aiohttp.ClientResponse
    head: bytes = b""

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.head:
            yield self.head
        async for chunk in self.response.content.iter_any():
            yield chunk


async def relay(job: Job, send: Send) -> None:
    """Serve ``job`` completely, including its usage record.

    Raises RefusalError, before any byte of the answer, when the request cannot be
    served (a body that cannot be translated, no ready account, the upstream's
    refusal); the caller writes its usage row and answers it (gateway.refusals).
    """
    upstream = UPSTREAMS[job.entry.provider]
    route = route_for(job.client_format, job.entry.provider)
    try:
        prepared = upstream.prepare(_translated(job, route), endpoint=job.endpoint, client_headers=job.request.headers,
                                    thinking=job.thinking, adaptive=job.entry.adaptive_thinking,
                                    session_seed=job.api_key.prefix)
    except TranslationError as exc:
        raise RefusalError(exc.status, exc.message) from None
    opened, credential = await _open(job, upstream, prepared)
    job.record.credential_id = credential.pk
    meter = UsageMeter(upstream.upstream_format)
    try:
        await _deliver(job, send, route, opened, meter)
    except asyncio.CancelledError:
        # A client that hangs up after its whole answer (the row already went to the writer, which
        # may not have written it yet) was served: the queued row must not change under the writer.
        if not job.recorded:
            job.record.outcome = Outcome.CLIENT_CANCELLED
        raise
    finally:
        opened.response.close()
        _finish_record(job, meter)
    note_credential_use(credential.pk, upstream.windows(opened.response.headers))


def _translated(job: Job, route: Route) -> dict[str, Any]:
    """The client's body in the upstream's format (the upstream's own rules come after, in its prepare())."""
    target = Target(job.entry.upstream_model, job.entry.max_output_tokens, job.entry.adaptive_thinking)
    try:
        return route.request(job.body, target)
    except TranslationError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        # Translators trust the shapes the client format promises; a body that breaks
        # that promise is the client's error, not ours.
        raise TranslationError(f"Malformed {job.client_format} request: {type(exc).__name__} {exc}"[:300]) from None


async def _open(job: Job, upstream: Upstream, prepared: Prepared) -> tuple[Opened, Credential]:
    """An upstream response with a 2xx status, trying credentials in turn; raises RefusalError."""
    provider = job.entry.provider
    conversation = conversation_key(job.request.headers, job.body, job.api_key.prefix)
    if conversation != job.api_key.prefix:  # the key itself is the fallback, not a conversation
        job.record.conversation = conversation[:64]
    tried: set[int] = set()
    last: UpstreamError | None = None
    for attempt in range(settings.PROXYHUB_MAX_ATTEMPTS):
        try:
            credential = await pool.acquire(provider, tried, conversation, job.api_key.groups or ())
        except pool.NoCredentialError as exc:
            if exc.connected and not exc.groups:  # a key's groups running dry is not the provider's outage
                alerts.provider_unavailable(provider)  # returns at once; the alert thread checks and sends
            raise (_exhausted(job, last) if last else _no_credential(job, exc)) from None
        job.record.attempts = attempt + 1
        try:
            # Refreshed first if it is about to expire, and once more on a 401.
            if credential.expires_within(settings.PROXYHUB_REFRESH_MARGIN):
                credential = await _refreshed(credential)
            try:
                return await _call(upstream, prepared, credential), credential
            except UpstreamAuthError:
                credential = await _refreshed(credential)
                return await _call(upstream, prepared, credential), credential
        except RefreshError as exc:
            if exc.permanent:
                pool.forget(credential)
            last = last or UpstreamUnavailableError(503, f"token refresh failed: {exc}")
        except UpstreamRejectedError as exc:
            raise _rejected(exc) from None
        except UpstreamError as exc:
            last = exc
            await _sideline(credential, exc)
        tried.add(credential.pk)
    assert last is not None
    raise _exhausted(job, last)


async def _call(upstream: Upstream, prepared: Prepared, credential: Credential) -> Opened:
    """One request on one credential: its response once the status (and a stream's opening) is vetted.
    Raises the UpstreamError the answer amounts to."""
    call = upstream.call(credential, prepared)
    response = await _post(call, credential.proxy_url)
    if response.status >= 400:
        raw = await response.read()
        response.release()
        raise upstream.classify(response.status, response.headers, raw)
    if not call.stream:
        return Opened(response)
    return await _vetted(response, upstream)


async def _post(call: UpstreamCall, proxy_url: str) -> aiohttp.ClientResponse:
    """Send ``call``; a network failure raises UpstreamUnavailableError.

    A pooled keep-alive connection the upstream already closed fails on first
    use; that is retried once at once, not held against the credential.
    """
    try:
        return await session(proxy_url).post(call.url, data=call.body, headers=call.headers)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise _unreachable("upstream unreachable", exc) from None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise _unreachable("upstream unreachable", exc) from None
    try:
        return await session(proxy_url).post(call.url, data=call.body, headers=call.headers)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise _unreachable("upstream unreachable", exc) from None


def _unreachable(what: str, exc: BaseException) -> UpstreamUnavailableError:
    return UpstreamUnavailableError(502, f"{what} ({type(exc).__name__})", cooldown=settings.PROXYHUB_COOLDOWN_UNREACHABLE)


async def _vetted(response: aiohttp.ClientResponse, upstream: Upstream) -> Opened:
    """Read a stream up to its first decisive event before committing to it.

    Upstreams report some account-level failures (overload, a spent quota) as
    an error event right after the 200; raised here by stream_start(), before any
    byte went to the client, they fail over to the next credential like an HTTP error.
    """
    head, parser = b"", SSEParser()
    try:
        async for chunk in response.content.iter_any():
            head += chunk
            for event in parser.feed(chunk):
                if upstream.stream_start(event):
                    return Opened(response, head)
            if len(head) > PEEK_LIMIT:
                break
    except UpstreamError:
        response.close()
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        response.close()
        raise _unreachable("upstream stream failed", exc) from None
    return Opened(response, head)


async def _refreshed(credential: Credential) -> Credential:
    fresh = await arefresh(credential)
    pool.replace(fresh)
    return fresh


async def _sideline(credential: Credential, error: UpstreamError) -> None:
    """Keep a failing credential out of the way for as long as its error says."""
    reason = f"{error.status} {error.error_type or ''} {error.message}".strip()[:200]
    if isinstance(error, UpstreamAuthError):
        # TextChoices members are str; without Django's stubs mypy reads them as (value, label) tuples.
        await pool.take_out(credential, Credential.Status.NEEDS_RELOGIN,  # type: ignore[arg-type]
                            f"rejected after refresh: {reason}")
    elif isinstance(error, CredentialUnusableError):
        await pool.take_out(credential, Credential.Status.DISABLED, reason)  # type: ignore[arg-type]
    elif isinstance(error, (UpstreamRateLimitedError, UpstreamUnavailableError)):
        await pool.cool_down(credential, error.cooldown or settings.PROXYHUB_COOLDOWN_THROTTLE, reason)
    logger.warning("credential %s failed: %s %s", credential.pk, error.status, error.error_type or "")


def _no_credential(job: Job, exc: pool.NoCredentialError) -> RefusalError:
    name = PROVIDER_NAMES.get(exc.provider, exc.provider)
    if exc.groups:
        groups = ", ".join(exc.groups)
        if exc.retry_after is not None:
            return _rate_limited(job, exc.retry_after,
                                 f"Every {name} account in this key's groups ({groups}) is cooling down right now.")
        return _upstream_refusal(503, f"This key's account groups ({groups}) have no ready {name} account. "
                                      f"Ask an admin to add an account to the groups or check the credentials page.")
    if not exc.connected:
        return _upstream_refusal(503, f"No {name} account is connected to this ProxyHub. Ask an admin to connect "
                                      f"one (admin site, or `python manage.py import_credentials`).")
    if exc.retry_after is not None:
        return _rate_limited(job, exc.retry_after, f"Every {name} account is cooling down right now.")
    return _upstream_refusal(503, f"No {name} account is usable right now (all need re-login or are disabled). "
                                  f"Ask an admin to check the credentials page.")


def _rate_limited(job: Job, retry_after: float, message: str) -> RefusalError:
    seconds = str(max(int(retry_after + 0.999), 1))
    headers = {"retry-after": seconds}
    if job.client_format == "anthropic":
        headers["anthropic-ratelimit-unified-status"] = "rejected"
    return _upstream_refusal(429, f"{message} Try again in {seconds} s.", headers=headers)


def _exhausted(job: Job, last: UpstreamError) -> RefusalError:
    if isinstance(last, UpstreamRateLimitedError):
        return _rate_limited(job, last.cooldown or settings.PROXYHUB_COOLDOWN_THROTTLE, "The upstream is rate-limiting.")
    return _upstream_refusal(502, f"Upstream failed: {last.message}")


def _rejected(error: UpstreamError) -> RefusalError:
    status = error.status if 400 <= error.status < 500 else 400
    return _upstream_refusal(status, error.message,
                             error_type=error.error_type if status != 400 or error.error_type else None)


def _upstream_refusal(status: int, message: str, *, error_type: str | None = None,
                      headers: dict[str, str] | None = None) -> RefusalError:
    return RefusalError(status, message, error_type=error_type, headers=headers, outcome=Outcome.UPSTREAM_ERROR)


async def _deliver(job: Job, send: Send, route: Route, opened: Opened, meter: UsageMeter) -> None:
    headers = {ours: opened.response.headers[k] for k, ours in PASSED_HEADERS.items() if k in opened.response.headers}
    if job.stream:
        await _relay_stream(job, send, route, opened, meter, headers)
    elif meter.format == "responses" and job.endpoint != "compact":
        await _aggregate(job, send, route, opened, meter, headers)
    else:
        raw = await opened.response.read()
        obj = fastjson.loads(raw)
        meter.body(obj)
        job.record.status_code = 200
        payload = None if route.response is None else route.response(obj, job.body, job.entry.name)
        _mark_first_byte(job)
        _finish_record(job, meter)
        if payload is None:
            await send_bytes(send, 200, raw, headers=headers)
        else:
            await send_json(send, 200, payload, headers=headers)


async def _aggregate(job: Job, send: Send, route: Route, opened: Opened, meter: UsageMeter,
                     headers: dict[str, str]) -> None:
    """A stream-only upstream (Codex) serving a stream:false client."""
    aggregator, parser = ResponseAggregator(), SSEParser()
    async for chunk in opened.chunks():
        for event in parser.feed(chunk):
            meter.feed(event)
            aggregator.feed(event)
    for event in parser.finish():
        meter.feed(event)
        aggregator.feed(event)
    try:
        result = aggregator.result()
    except UpstreamStreamError as exc:
        # Nothing went out yet, but the stream was read: its row keeps the tokens metered.
        refusal = _upstream_refusal(exc.status, exc.message, error_type=exc.code)
        refusals.mark_row(job.record, refusal)
        _finish_record(job, meter)
        await refusals.send(send, job.client_format, refusal)
        return
    obj = result if route.response is None else route.response(result, job.body, job.entry.name)
    job.record.status_code = 200
    _mark_first_byte(job)
    _finish_record(job, meter)
    await send_json(send, 200, obj, headers=headers)


async def _relay_stream(job: Job, send: Send, route: Route, opened: Opened, meter: UsageMeter,
                        headers: dict[str, str]) -> None:
    """Forward each upstream event as it arrives; never buffer the stream."""
    translator = route.stream(job.body, job.entry.name) if route.stream else None
    parser = SSEParser()
    await start_stream(send, headers)
    job.record.status_code = 200
    sent = _SentState()
    keepalive = asyncio.get_running_loop().create_task(_keepalive(send, sent))
    try:
        async for chunk in opened.chunks():
            out = _translate_chunk(chunk, parser, meter, translator)
            if out:
                sent.at_boundary = False
                await send({"type": "http.response.body", "body": out, "more_body": True})
                sent.at_boundary, sent.last = parser.at_boundary, time.monotonic()
                _mark_first_byte(job)
        tail = b"".join(_translate_events(parser.finish(), meter, translator))
        if translator is not None:
            tail += b"".join(translator.finish())
        if not meter.terminal:
            tail += _stream_failure(job, translator, meter, "upstream stream ended early")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        tail = _stream_failure(job, translator, meter, f"upstream connection failed ({type(exc).__name__})")
    finally:
        keepalive.cancel()
    if meter.error_type:
        job.record.outcome = Outcome.UPSTREAM_ERROR
        job.record.error_type = meter.error_type[:64]
    _finish_record(job, meter)  # journaled before the last byte: a killed worker still has the row
    await send({"type": "http.response.body", "body": tail, "more_body": False})


def _translate_chunk(chunk: bytes, parser: SSEParser, meter: UsageMeter, translator: Any) -> bytes:
    if translator is None:
        # Same format: forward the upstream bytes untouched; only events with usage get parsed.
        meter.feed_complete(parser.complete(chunk))
        return chunk
    return b"".join(_translate_events(parser.feed(chunk), meter, translator))


def _translate_events(events: Any, meter: UsageMeter, translator: Any) -> list[bytes]:
    out: list[bytes] = []
    for event in events:
        meter.feed(event)
        if translator is not None:
            out.extend(translator.feed(event))
    return out


def _stream_failure(job: Job, translator: Any, meter: UsageMeter, message: str) -> bytes:
    meter.error_type = meter.error_type or "stream_interrupted"
    if translator is not None:
        return b"".join(translator.fail("api_error", message))
    return b"".join(stream_error(job.client_format, "api_error", message, meter.last_sequence + 1))


@dataclass
class _SentState:
    """What the client has received: whether it ended on an event boundary, and when."""

    at_boundary: bool = True
    last: float = 0.0


async def _keepalive(send: Send, sent: _SentState) -> None:
    """Send an SSE comment during long upstream silences, only between whole events."""
    interval = settings.PROXYHUB_KEEPALIVE_SECONDS
    while True:
        await asyncio.sleep(interval)
        if sent.at_boundary and time.monotonic() - sent.last >= interval:
            await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
            sent.last = time.monotonic()


def _mark_first_byte(job: Job) -> None:
    if job.record.ttfb_ms is None:
        job.record.ttfb_ms = int((time.monotonic() - job.started) * 1000)


def _finish_record(job: Job, meter: UsageMeter | None) -> None:
    """Fill in the row's tokens and duration and hand it to the writer, once per request."""
    if job.recorded:
        return
    job.recorded = True
    record = job.record
    if meter is not None:
        record.input_tokens = meter.usage.input
        record.cache_read_tokens = meter.usage.cache_read
        record.cache_write_tokens = meter.usage.cache_write
        record.output_tokens = meter.usage.output
        record.reasoning_tokens = meter.usage.reasoning
    record.duration_ms = int((time.monotonic() - job.started) * 1000)
    record_usage(record)
