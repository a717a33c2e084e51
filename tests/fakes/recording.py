"""What the fakes saw and did, for tests to inspect.

The servers record every request on arrival (so a test can see a request
that is still streaming), set its status once it is decided, count events,
keep the last usage they reported, and track streams that are open or whose
client went away.  Thread-safe; readers get copies.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

_SECRET_HEADERS = ("authorization", "x-api-key")


@dataclass(frozen=True)
class Recorded:
    """One request as a fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]  # case-insensitive
    json: Any  # parsed JSON body, or None (form bodies, bad JSON, no body)
    form: dict[str, str] | None  # parsed form body for urlencoded requests
    status: int | None = None  # response status, once decided
    received_at: float = field(default_factory=time.time)  # unix seconds, to check spacing between calls

    def __repr__(self) -> str:
        # pytest prints reprs on assertion failures: keep credentials out.
        shown = {k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in self.headers.items()}
        return f"Recorded({self.method} {self.path} status={self.status} headers={shown})"

    @staticmethod
    def make_headers(raw: Any) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(CIMultiDict(raw))


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[str, list[Recorded]] = {}
        self._counters: Counter[str] = Counter()
        self._usage: dict[str, dict[str, Any]] = {}
        self._open: Counter[str] = Counter()
        self._cancelled: Counter[str] = Counter()

    def add(self, provider: str, record: Recorded) -> int:
        """Store a request; returns its position for set_status()."""
        with self._lock:
            records = self._requests.setdefault(provider, [])
            records.append(record)
            self._counters[f"{provider}.requests"] += 1
            return len(records) - 1

    def set_status(self, provider: str, position: int, status: int) -> None:
        with self._lock:
            records = self._requests.get(provider, [])
            if position < len(records):  # reset() may have cleared it meanwhile
                records[position] = replace(records[position], status=status)
            self._counters[f"{provider}.status.{status}"] += 1

    def requests(self, provider: str) -> list[Recorded]:
        with self._lock:
            return list(self._requests.get(provider, []))

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def counter(self, name: str) -> int:
        with self._lock:
            return self._counters[name]

    def set_usage(self, provider: str, usage: dict[str, Any]) -> None:
        with self._lock:
            self._usage[provider] = usage

    def last_usage(self, provider: str) -> dict[str, Any] | None:
        with self._lock:
            usage = self._usage.get(provider)
            return None if usage is None else dict(usage)

    def stream_opened(self, provider: str) -> None:
        with self._lock:
            self._open[provider] += 1

    def stream_closed(self, provider: str, *, cancelled: bool) -> None:
        with self._lock:
            self._open[provider] -= 1
            if cancelled:
                self._cancelled[provider] += 1
                self._counters[f"{provider}.stream.cancelled"] += 1
            else:
                self._counters[f"{provider}.stream.finished"] += 1

    def open_streams(self, provider: str) -> int:
        with self._lock:
            return self._open[provider]

    def cancelled_streams(self, provider: str) -> int:
        with self._lock:
            return self._cancelled[provider]

    def reset(self) -> None:
        """Forget records, counters and usage.  Open streams stay counted:
        they are still running and will decrement when they end."""
        with self._lock:
            self._requests.clear()
            self._counters.clear()
            self._usage.clear()
            self._cancelled.clear()
