"""Prometheus metrics through prometheus_client in multiprocess mode: one scrape reports every worker of a host.

Each worker writes its samples to mmap files in PROMETHEUS_MULTIPROC_DIR
(scripts/start makes one per run; a server started otherwise gets a private
directory from proxyhub/settings.py, so its metrics are its own). render()
merges the files of every worker, live or gone (counters and histograms
survive a restart, the live gauges of a dead worker are dropped), and adds
the account pool, read from the database at scrape time.

observe() is on the hot path (usage.writer.record_usage() calls it for every
request, refused ones included): it only adds to in-process sums, which
flush() writes to the files once a second, before a scrape and at exit (a
SIGKILLed worker loses at most its last second of counts).
"""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import threading
from bisect import bisect_left
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


def _sweep_private_directories() -> None:
    """Remove the private directories (proxyhub/settings.py) of processes that died without cleaning up."""
    for path in glob.glob(os.path.join(os.path.dirname(DIRECTORY), "proxyhub-metrics-*-*")):
        pid = os.path.basename(path).split("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)

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

# observe() only adds to these in-process sums; flush() moves them into the mmap files about once a second
# (proxyhub.background), before a scrape and at exit. Writing every observation through prometheus_client
# measured ~30 us a request (eight mmap writes, each with a lock and a pid check); this costs ~2.5 us.
_lock = threading.Lock()  # the event loop adds, a scrape's thread may flush
_pending: dict[tuple[str, str, str, int, str], _Sums] = {}  # provider, endpoint, outcome, status, requested model
_in_flight = 0
_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


class _Sums:
    """What one kind of request added since the last flush: count, tokens, time histograms' sums and buckets."""

    __slots__ = ("count", "tokens", "duration_sum", "duration_counts", "ttfb_sum", "ttfb_counts")

    def __init__(self) -> None:
        self.count = 0
        self.tokens = dict.fromkeys(TOKEN_FIELDS, 0)
        self.duration_sum, self.duration_counts = 0.0, [0] * len(DURATION_BUCKETS)
        self.ttfb_sum, self.ttfb_counts = 0.0, [0] * len(TTFB_BUCKETS)


def observe(record: UsageRow) -> None:
    """Count one finished request (label values are worked out at flush, once per kind of request)."""
    key = (record.provider, record.endpoint, record.outcome, record.status_code,
           record.requested_model if record.provider else "")
    seconds = record.duration_ms / 1000
    with _lock:
        sums = _pending.get(key)
        if sums is None:
            sums = _pending[key] = _Sums()
        sums.count += 1
        sums.duration_sum += seconds
        sums.duration_counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        if record.ttfb_ms is not None:
            seconds = record.ttfb_ms / 1000
            sums.ttfb_sum += seconds
            sums.ttfb_counts[bisect_left(TTFB_BUCKETS, seconds)] += 1
        tokens = sums.tokens
        tokens["input"] += record.input_tokens
        tokens["output"] += record.output_tokens
        tokens["cache_read"] += record.cache_read_tokens
        tokens["cache_write"] += record.cache_write_tokens


def request_started() -> None:
    global _in_flight
    _in_flight += 1


def request_finished() -> None:
    global _in_flight
    _in_flight -= 1


def in_flight() -> int:
    """Generation requests being served right now in this process."""
    return _in_flight


def set_usage_backlog(waiting: int, dropped: int) -> None:
    """This process's usage rows not yet written, and dropped since start (proxyhub.background samples them)."""
    USAGE_WAITING.set(waiting)
    USAGE_DROPPED.set(dropped)


def flush() -> None:
    """Write this process's counts since the last flush, and its in-flight gauge, to its mmap files."""
    global _pending
    with _lock:
        pending, _pending = _pending, {}
    for (provider, endpoint, outcome, status_code, requested), sums in pending.items():
        provider, status = provider or "none", str(status_code)
        _child(REQUESTS, (provider, endpoint, outcome, status)).inc(sums.count)
        for kind, n in sums.tokens.items():
            if n:
                _child(TOKENS, (provider, kind)).inc(n)
        # An unresolved model is whatever the client typed: one label value for all keeps the series bounded.
        timed = (provider, base_model(requested) if requested else "none", endpoint, status)
        _add(_child(DURATION, timed), sums.duration_sum, sums.duration_counts)
        _add(_child(TTFB, timed), sums.ttfb_sum, sums.ttfb_counts)
    IN_FLIGHT.set(_in_flight)


def _child(metric: Any, labels: tuple[str, ...]) -> Any:
    child = _children.get((metric, labels))
    if child is None:
        child = _children[metric, labels] = metric.labels(*labels)
    return child


def _add(histogram: Any, total: float, counts: list[int]) -> None:
    """Histogram.observe() for many observations at once: one write per bucket that got any.

    prometheus_client keeps a child's buckets non-cumulative (``_buckets[i]``
    counts observations with bucket i-1 < value <= bucket i) plus ``_sum``;
    pinned in requirements.txt, and test_metrics checks the exposed buckets.
    """
    if not any(counts):
        return
    histogram._sum.inc(total)
    for i, n in enumerate(counts):
        if n:
            histogram._buckets[i].inc(n)


def render() -> bytes:
    """The exposition text for every worker of this host, plus the account pool (one database query)."""
    flush()
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
    flush()
    multiprocess.mark_process_dead(os.getpid(), DIRECTORY)
    if os.environ.get("PROXYHUB_METRICS_DIR_PID") == str(os.getpid()):  # the private directory settings made
        shutil.rmtree(DIRECTORY, ignore_errors=True)


atexit.register(_at_exit)
if os.environ.get("PROXYHUB_METRICS_DIR_PID") == str(os.getpid()):
    _sweep_private_directories()
