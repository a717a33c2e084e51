"""Prometheus metrics for this process: what the gateway served, and the account pool.

Counters are plain dict increments fed by usage.record_usage() (every request
ends there, refused ones included), so the hot path pays no more than that.
render() writes the text exposition format and metrics_view() serves it at
/metrics: with PROXYHUB_METRICS_TOKEN set, to a scraper sending it as a bearer
token; without, to loopback clients only.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from django.utils import timezone

from credentials.health import pool_health
from gateway.usage.rows import UsageRow

TOKEN_FIELDS = {"input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_tokens",
                "cache_write": "cache_write_tokens"}

_requests: Counter[tuple[str, str, str, str]] = Counter()  # provider, endpoint, outcome, status
_tokens: Counter[tuple[str, str]] = Counter()  # provider, kind
_seconds: Counter[tuple[str, str]] = Counter()  # provider, "duration" | "ttfb" -> summed seconds
_timed: Counter[tuple[str, str]] = Counter()  # provider, "duration" | "ttfb" -> observations


def observe(record: UsageRow) -> None:
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


_in_flight = 0


def request_started() -> None:
    global _in_flight
    _in_flight += 1


def request_finished() -> None:
    global _in_flight
    _in_flight -= 1


def in_flight() -> int:
    """Generation requests being served right now in this process."""
    return _in_flight


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


def _family(out: list[str], name: str, kind: str, help_text: str, samples: Iterable[tuple[str, Any]]) -> None:
    out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    out += [f"{name}{labels} {value}" for labels, value in samples]


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(str(v))}"' for k, v in labels.items()) + "}"
