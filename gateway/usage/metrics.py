"""Prometheus metrics through prometheus_client in multiprocess mode: one scrape reports every worker of a host.

Each worker writes its samples to mmap files in PROMETHEUS_MULTIPROC_DIR
(scripts/start makes one per run; a server started otherwise gets a private
directory from proxyhub/settings.py, so its metrics are its own). render()
merges the files of every worker, live or gone (counters and histograms
survive a restart, the live gauges of a dead worker are dropped), and adds
the account pool, read from the database at scrape time.

observe() is on the hot path (usage.writer.record_usage() calls it for every
request, refused ones included): label children are looked up once per label
combination and kept, so a request costs a dict lookup and a few mmap writes.
"""
from __future__ import annotations

import atexit
import glob
import os
import shutil
from typing import Any, Iterator

from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from credentials.health import pool_health
from gateway.usage.rows import UsageRow, base_model

TOKEN_FIELDS = {"input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_tokens",
                "cache_write": "cache_write_tokens"}
# LLM calls take from milliseconds (refusals) to many minutes (long agent turns).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, float("inf"))
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, float("inf"))
TIMED_LABELS = ("provider", "model", "endpoint", "status")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DIRECTORY = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if not DIRECTORY:  # set by proxyhub/settings.py, which every entry point loads first
    raise RuntimeError("PROMETHEUS_MULTIPROC_DIR must be set before gateway.usage.metrics is imported")
os.makedirs(DIRECTORY, exist_ok=True)

# registry=None: the samples live in the mmap files; render() reads them through MultiProcessCollector.
REQUESTS = Counter("proxyhub_requests", "Requests served, by upstream provider, endpoint, outcome and HTTP status.",
                   ("provider", "endpoint", "outcome", "status"), registry=None)
TOKENS = Counter("proxyhub_tokens", "Tokens the upstreams reported, by kind.", ("provider", "kind"), registry=None)
DURATION = Histogram("proxyhub_request_duration_seconds", "Whole request time.", TIMED_LABELS,
                     buckets=DURATION_BUCKETS, registry=None)
TTFB = Histogram("proxyhub_request_ttfb_seconds", "Time to the first byte sent to the client.", TIMED_LABELS,
                 buckets=TTFB_BUCKETS, registry=None)
IN_FLIGHT = Gauge("proxyhub_requests_in_flight", "Generation requests being served now.", registry=None,
                  multiprocess_mode="livesum")
USAGE_WAITING = Gauge("proxyhub_usage_rows_waiting", "Usage rows not yet in the database (in memory or the journal).",
                      registry=None, multiprocess_mode="livesum")
USAGE_DROPPED = Gauge("proxyhub_usage_rows_dropped", "Usage rows dropped because the journal was full, since start.",
                      registry=None, multiprocess_mode="livesum")

_requests: dict[tuple[str, str, str, str], Any] = {}
_tokens: dict[tuple[str, str], Any] = {}
_timers: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
_in_flight = 0


def observe(record: UsageRow) -> None:
    """Count one finished request."""
    provider = record.provider or "none"
    status = str(record.status_code)
    key = (provider, record.endpoint, record.outcome, status)
    child = _requests.get(key)
    if child is None:
        child = _requests[key] = REQUESTS.labels(*key)
    child.inc()
    # An unresolved model is whatever the client typed: one label value for all of them keeps the series bounded.
    timed = (provider, base_model(record.requested_model) if record.provider else "none", record.endpoint, status)
    timers = _timers.get(timed)
    if timers is None:
        timers = _timers[timed] = (DURATION.labels(*timed), TTFB.labels(*timed))
    timers[0].observe(record.duration_ms / 1000)
    if record.ttfb_ms is not None:
        timers[1].observe(record.ttfb_ms / 1000)
    for kind, field in TOKEN_FIELDS.items():
        value = getattr(record, field)
        if value:
            counter = _tokens.get((provider, kind))
            if counter is None:
                counter = _tokens[provider, kind] = TOKENS.labels(provider, kind)
            counter.inc(value)


def request_started() -> None:
    global _in_flight
    _in_flight += 1
    IN_FLIGHT.inc()


def request_finished() -> None:
    global _in_flight
    _in_flight -= 1
    IN_FLIGHT.dec()


def in_flight() -> int:
    """Generation requests being served right now in this process."""
    return _in_flight


def set_usage_backlog(waiting: int, dropped: int) -> None:
    """This process's usage rows not yet written, and dropped since start (proxyhub.background samples them)."""
    USAGE_WAITING.set(waiting)
    USAGE_DROPPED.set(dropped)


def render() -> bytes:
    """The exposition text for every worker of this host, plus the account pool (one database query)."""
    _forget_dead_workers()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, DIRECTORY)
    registry.register(_AccountsCollector())
    return generate_latest(registry)


class _AccountsCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("proxyhub_credentials", "OAuth accounts by provider and state.",
                                   labels=("provider", "state"))
        for row in pool_health(timezone.now()):
            for state in ("ready", "cooling", "needs_relogin", "disabled"):
                family.add_metric((row.provider, state), getattr(row, state))
        yield family


def _forget_dead_workers() -> None:
    """Drop the live gauges of workers that died without saying so (SIGKILL): their in-flight count is stale."""
    for path in glob.glob(os.path.join(DIRECTORY, "gauge_live*_*.db")):
        pid = int(path.rsplit("_", 1)[1][:-3])
        if pid != os.getpid() and not _alive(pid):
            multiprocess.mark_process_dead(pid, DIRECTORY)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _at_exit() -> None:
    multiprocess.mark_process_dead(os.getpid(), DIRECTORY)
    if os.environ.get("PROXYHUB_METRICS_DIR_PID") == str(os.getpid()):  # the private directory settings made
        shutil.rmtree(DIRECTORY, ignore_errors=True)


atexit.register(_at_exit)
