"""Prometheus metrics for this process: what the gateway served, and the account pool.

Counters are plain dict increments fed by usage.record_usage() (every request
ends there, refused ones included), so the hot path pays no more than that.
render() writes the text exposition format and metrics_view() serves it at
/metrics: with PROXYHUB_METRICS_TOKEN set, to a scraper sending it as a bearer
token; without, to loopback clients only.
"""
from __future__ import annotations

import hmac
from collections import Counter
from typing import Any, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from credentials.health import pool_health
from gateway.models import UsageRecord

TOKEN_FIELDS = {"input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_tokens",
                "cache_write": "cache_write_tokens"}

_requests: Counter[tuple[str, str, str, str]] = Counter()  # provider, endpoint, outcome, status
_tokens: Counter[tuple[str, str]] = Counter()  # provider, kind
_seconds: Counter[tuple[str, str]] = Counter()  # provider, "duration" | "ttfb" -> summed seconds
_timed: Counter[tuple[str, str]] = Counter()  # provider, "duration" | "ttfb" -> observations


def observe(record: UsageRecord) -> None:
    """Count one finished request."""
    provider = record.provider or "none"
    _requests[provider, record.endpoint, record.outcome, str(record.status_code)] += 1
    for kind, field in TOKEN_FIELDS.items():
        value = getattr(record, field)
        if value:
            _tokens[provider, kind] += value
    _seconds[provider, "duration"] += record.duration_ms / 1000
    _timed[provider, "duration"] += 1
    if record.ttfb_ms is not None:
        _seconds[provider, "ttfb"] += record.ttfb_ms / 1000
        _timed[provider, "ttfb"] += 1


def reset() -> None:
    for counter in (_requests, _tokens, _seconds, _timed):
        counter.clear()


def render(in_flight: int, usage_pending: int) -> str:
    """The exposition text; reads the credential pool from the database (one query)."""
    out: list[str] = []
    _family(out, "proxyhub_requests_total", "counter", "Requests served, by upstream provider, endpoint, outcome "
            "and HTTP status.", ((_labels(provider=p, endpoint=e, outcome=o, status=s), n)
                                 for (p, e, o, s), n in sorted(_requests.items())))
    _family(out, "proxyhub_tokens_total", "counter", "Tokens the upstreams reported, by kind.",
            ((_labels(provider=p, kind=k), n) for (p, k), n in sorted(_tokens.items())))
    for name, what in (("duration", "Whole request time"), ("ttfb", "Time to the first byte sent to the client")):
        keys = sorted(k for k in _timed if k[1] == name)
        metric = f"proxyhub_request_{name}_seconds"
        out += [f"# HELP {metric} {what}.", f"# TYPE {metric} summary"]
        for provider, _ in keys:
            out.append(f"{metric}_sum{_labels(provider=provider)} {_seconds[provider, name]:.6f}")
            out.append(f"{metric}_count{_labels(provider=provider)} {_timed[provider, name]}")
    _family(out, "proxyhub_requests_in_flight", "gauge", "Generation requests being served now.", [("", in_flight)])
    _family(out, "proxyhub_usage_records_pending", "gauge", "Usage records queued for the database.",
            [("", usage_pending)])
    states: list[tuple[str, int]] = []
    for row in pool_health(timezone.now()):
        for state in ("ready", "cooling", "needs_relogin", "disabled"):
            states.append((_labels(provider=row.provider, state=state), getattr(row, state)))
    _family(out, "proxyhub_credentials", "gauge", "OAuth accounts by provider and state.", states)
    return "\n".join(out) + "\n"


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    # Imported here: gateway.app imports this module (through gateway.usage).
    from gateway.app import in_flight
    from gateway.usage import pending_count

    token = settings.PROXYHUB_METRICS_TOKEN
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("Send PROXYHUB_METRICS_TOKEN as a bearer token.\n", status=401,
                                content_type="text/plain", headers={"www-authenticate": "Bearer"})
    elif request.META.get("REMOTE_ADDR") not in ("127.0.0.1", "::1"):
        return HttpResponse("Metrics are served to loopback clients only; set PROXYHUB_METRICS_TOKEN to "
                            "scrape from elsewhere.\n", status=403, content_type="text/plain")
    return HttpResponse(render(in_flight(), pending_count()), content_type="text/plain; version=0.0.4; charset=utf-8")


def _family(out: list[str], name: str, kind: str, help_text: str, samples: Iterable[tuple[str, Any]]) -> None:
    out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    out += [f"{name}{labels} {value}" for labels, value in samples]


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(str(v))}"' for k, v in labels.items()) + "}"
