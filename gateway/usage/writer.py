"""Usage rows: journaled at once, written to the database off the hot path by a batching writer.

record_usage() appends the row to this process's journal segment (see
journal.py) and keeps it in memory; a task writes the rows every
FLUSH_SECONDS through store.write_rows() in the writer's own thread (its own
database connection, so a slow or refusing database never holds up the thread
the /v1 path uses for its queries). A segment is deleted once all its rows are
committed.

When the database refuses, the gateway keeps serving: rows wait in the journal
and the writer retries less and less often (up to MAX_RETRY_SECONDS), logging
once when writes start failing and once when they recover. At most
MAX_MEMORY_ROWS rows are held in memory; beyond that a segment "spills": its
rows live only on disk and are read back from the file when the database
returns. The journal directory is bounded by PROXYHUB_JOURNAL_MAX_BYTES; a
row past it is dropped (counted in dropped_rows(), logged once). At exit what
can be written is written; what cannot stays on disk for the next process.
"""
from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from django.conf import settings
from django.db import connections

from accounts.services import touch_last_used
from credentials.services import note_success
from gateway.usage import journal, metrics
from gateway.usage.journal import Journal, Segment
from gateway.usage.rows import UsageRow
from gateway.usage.store import write_rows

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
MAX_RETRY_SECONDS = 5.0
MAX_MEMORY_ROWS = 10_000  # rows held in memory; past it they wait in the journal only
BATCH_ROWS = 5_000  # rows per transaction

T = TypeVar("T")

_lock = threading.Lock()  # record_usage() (event loop) against the writer's thread
_step_lock = threading.Lock()  # one write step at a time, the exit handler included
_executor = ThreadPoolExecutor(1, thread_name_prefix="usage-writer")
_journal: Journal | None = None
_journal_checked = False
_memory_current: Segment | None = None  # rows that could not be journaled
_closed: deque[Segment] = deque()  # segments closed to appends, oldest first, waiting for the database
_memory_rows = 0
_dropped = 0
_failing_since: float | None = None
_warned: set[str] = set()
_credential_notes: dict[int, dict[str, Any]] = {}
_flush_task: asyncio.Task[None] | None = None


def note_credential_use(credential_id: int, windows: dict[str, Any]) -> None:
    """Remember a credential's last use and window state; written with the next flush, once per credential."""
    _credential_notes[credential_id] = windows or _credential_notes.get(credential_id) or {}


def record_usage(record: UsageRow) -> None:
    """Journal one row and queue it for the database, where it arrives within FLUSH_SECONDS.

    Call it before the request's last byte goes to the client: once this
    returns, a SIGKILL of the process no longer loses the row.
    """
    global _flush_task
    metrics.observe(record)
    with _lock:
        _append(record)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        write_pending()
        return
    if _flush_task is None or _flush_task.done():
        # A fresh context: the task outlives this request, and its log lines are not about it.
        _flush_task = loop.create_task(_flush_later(), context=contextvars.Context())


def _append(row: UsageRow) -> None:
    global _memory_current, _memory_rows, _dropped
    target = _get_journal()
    segment: Segment | None = None
    if target is not None:
        try:
            segment = target.append(row)
        except OSError as exc:
            _warn_once("journal-write", "could not write the usage journal (%s); rows are held in memory only",
                       type(exc).__name__)
        else:
            if segment is None:
                _dropped += 1
                _warn_once("journal-full", "usage journal %s is over PROXYHUB_JOURNAL_MAX_BYTES (%d): dropping "
                           "usage rows until the database catches up", target.directory, target.max_bytes)
                return
    if segment is None:
        if _memory_rows >= MAX_MEMORY_ROWS:
            _dropped += 1
            _warn_once("memory-full", "usage queue full (%d rows) and no journal: dropping usage rows",
                       MAX_MEMORY_ROWS)
            return
        segment = _memory_current = _memory_current or Segment(None)
        segment.count += 1
    if segment.spilled:
        return
    if _memory_rows >= MAX_MEMORY_ROWS and segment.path is not None:
        _warn_once("spill", "more than %d usage rows wait for the database; the rest wait in the journal only",
                   MAX_MEMORY_ROWS)
        _memory_rows -= len(segment.rows)
        segment.rows = []
        segment.spilled = True
        return
    segment.rows.append(row)
    _memory_rows += 1


def _get_journal() -> Journal | None:
    global _journal, _journal_checked
    if not _journal_checked:
        _journal_checked = True
        if settings.PROXYHUB_JOURNAL_DIR:
            try:
                directory = journal.journal_directory()
                directory.mkdir(parents=True, exist_ok=True)
                _journal = Journal(directory, settings.PROXYHUB_JOURNAL_MAX_BYTES)
                _journal.measure()
            except OSError as exc:
                logger.error("cannot use the usage journal in %s (%s); a killed process will lose its queued "
                             "usage rows", settings.PROXYHUB_JOURNAL_DIR, exc)
    return _journal


def _warn_once(kind: str, message: str, *args: Any) -> None:
    if kind not in _warned:
        _warned.add(kind)
        logger.warning(message, *args)


async def _flush_later() -> None:
    # Rows queued while a write runs in its thread see this task still
    # running and start none of their own, so loop until nothing is left;
    # a database that refuses the write is retried less and less often.
    delay = FLUSH_SECONDS
    while True:
        await asyncio.sleep(delay)
        written = await _aflush_once()
        if not _has_work():
            await _in_writer_thread(_close_connection)
            # A row recorded while the connection closed saw this task running and started none:
            # return only if nothing came (no await between this check and the return).
            if not _has_work():
                return
        delay = FLUSH_SECONDS if written else min(delay * 2, MAX_RETRY_SECONDS)


async def aflush() -> bool:
    """See write_pending()."""
    while _has_work():
        if not await _aflush_once():
            return False
    return True


async def _aflush_once() -> bool:
    """Write the closed segments, then close the current one and write it; False when the database refused."""
    rotated = False
    while True:
        segment, rotated = _next_segment(rotate=not rotated)
        if segment is None:
            break
        if not await _in_writer_thread(_write_step, segment):
            return False
    await _in_writer_thread(_write_credential_notes)
    return True


def write_pending() -> bool:
    """Write every queued row now, in this thread; False when the database refused them (they stay queued)."""
    rotated = False
    while True:
        segment, rotated = _next_segment(rotate=not rotated)
        if segment is None:
            break
        if not _write_step(segment):
            return False
    _write_credential_notes()
    return True


async def _in_writer_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor, fn, *args)


def _next_segment(*, rotate: bool) -> tuple[Segment | None, bool]:
    """The oldest segment waiting for the database, closing the current ones first (if ``rotate``) when none
    is; and whether the current ones were closed by this call or before (the caller closes them once)."""
    global _memory_current
    with _lock:
        if not _closed and rotate:
            for segment in (_journal.rotate() if _journal else None, _memory_current):
                if segment is not None and segment.count:
                    _closed.append(segment)
            _memory_current = None
            rotate = False
        return (_closed[0] if _closed else None), not rotate


def _write_step(segment: Segment) -> bool:
    """Write up to BATCH_ROWS rows of ``segment``; release the segment once all are in. False on failure."""
    global _memory_rows
    with _step_lock:
        if not _closed or _closed[0] is not segment:
            return True  # written meanwhile (the exit handler and the writer thread race at shutdown)
        try:
            if segment.spilled:
                batch, lines, offset = _read_spilled(segment)
                write_rows(batch)
                segment.offset, segment.committed = offset, segment.committed + lines
                done = segment.offset >= segment.size or not lines
            else:
                batch = segment.rows[:BATCH_ROWS]
                write_rows(batch)
                with _lock:
                    del segment.rows[:len(batch)]
                    _memory_rows -= len(batch)
                segment.committed += len(batch)
                done = not segment.rows
        except Exception as exc:
            _writes_failed(exc)
            return False
        if done:
            with _lock:
                _closed.popleft()
                if _journal is not None:
                    _journal.release(segment)
        _writes_succeeded()
    _touch_keys(batch)
    return True


def _read_spilled(segment: Segment) -> tuple[list[UsageRow], int, int]:
    """The next batch of a segment whose rows are on disk only; an unreadable file is given up, loudly
    (a stuck segment would hold back every row after it)."""
    try:
        return segment.read_batch(BATCH_ROWS)
    except OSError as exc:
        logger.error("usage journal %s cannot be read (%s); its %d unwritten rows are lost", segment.path,
                     type(exc).__name__, segment.waiting)
        return [], segment.waiting, segment.size


def _writes_failed(exc: Exception) -> None:
    global _failing_since
    _close_connection()  # a broken connection is never reused: the next try connects afresh
    if _failing_since is None:
        _failing_since = time.monotonic()
        logger.error("usage writes are failing (%s: %s); rows wait in the journal and are retried",
                     type(exc).__name__, str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "")


def _writes_succeeded() -> None:
    global _failing_since
    if _failing_since is not None:
        logger.warning("usage writes recovered after %.0f s; %d rows still waiting",
                       time.monotonic() - _failing_since, waiting_rows())
        _failing_since = None
        _warned.difference_update({"spill", "journal-full", "memory-full", "keys", "notes"})


def _touch_keys(batch: Sequence[UsageRow]) -> None:
    last_used: dict[int, datetime] = {}
    for r in batch:
        if r.api_key_id is not None:
            last_used[r.api_key_id] = max(r.created_at, last_used.get(r.api_key_id, r.created_at))
    try:
        touch_last_used(last_used)
        _warned.discard("keys")
    except Exception:  # the rows are written: queueing them again would count them twice
        _warn_once("keys", "could not note the last use of %d keys", len(last_used))
        _close_connection()


def _write_credential_notes() -> None:
    notes: dict[int, dict[str, Any]] = {}
    while _credential_notes:  # popitem, unlike copy-then-clear, cannot drop a note added meanwhile
        credential_id, windows = _credential_notes.popitem()
        notes[credential_id] = windows
    for credential_id, windows in notes.items():
        try:
            note_success(credential_id, windows)
        except Exception:  # a last-used note is not worth a retry, nor a log line per flush
            _warn_once("notes", "could not note the use of credential %s", credential_id)
            _close_connection()
            return
    _warned.discard("notes")


def _close_connection() -> None:
    """Close this thread's database connection (never one inside a transaction: a test's, or a caller's)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            try:
                connection.close()
            except Exception:
                pass


# --- orphaned segments ------------------------------------------------------

async def areplay_orphans() -> int:
    """See replay_orphans()."""
    return await _in_writer_thread(replay_orphans)


def replay_orphans() -> int:
    """Write the segments of processes that are gone into the database and delete them; returns the rows
    new to the database. A segment the database refuses stays for the next try."""
    target = _get_journal()
    if target is None:
        return 0
    new = 0
    for segment in target.orphans():
        try:
            read, added = journal.replay_segment(segment, write_rows, BATCH_ROWS)
        except Exception as exc:
            journal.close_orphan(segment)
            _writes_failed(exc)
            for rest in target.orphans():  # unlock the others too
                journal.close_orphan(rest)
            return new
        target.release(segment)
        _writes_succeeded()
        new += added
        logger.info("replayed usage journal %s: %d rows, %d new", segment.path.name if segment.path else "", read,
                    added)
    _close_connection()
    return new


async def run_replayer(interval: float | None = None) -> None:
    """Replay orphaned segments now, then every ``interval`` seconds (a worker may die at any time)."""
    while True:
        try:
            await areplay_orphans()
        except Exception:
            logger.exception("usage journal replay failed")
        await asyncio.sleep(settings.PROXYHUB_JOURNAL_REPLAY_SECONDS if interval is None else interval)


# --- state, for metrics, tests and shutdown -------------------------------------

def _has_work() -> bool:
    return bool(_closed or _credential_notes or (_journal and _journal.current and _journal.current.count)
                or (_memory_current and _memory_current.count))


def waiting_rows() -> int:
    """Rows recorded by this process and not yet in the database (in memory or only in the journal)."""
    with _lock:
        current = (_journal.current if _journal else None, _memory_current)
        return sum(s.waiting for s in _closed) + sum(s.waiting for s in current if s is not None)


def pending_count() -> int:
    """See waiting_rows()."""
    return waiting_rows()


def memory_rows() -> int:
    """Waiting rows held in memory (bounded by MAX_MEMORY_ROWS)."""
    return _memory_rows


def dropped_rows() -> int:
    """Rows this process could neither journal nor hold (the journal was over its bound)."""
    return _dropped


def journal_bytes() -> int:
    """Bytes in this database's journal directory, every process's segments included."""
    target = _get_journal()
    return target.measure() if target else 0


def journal_path() -> Path | None:
    target = _get_journal()
    return target.directory if target else None


def idle() -> bool:
    """True when nothing is queued or being written (tests wait for this)."""
    return not _has_work() and (_flush_task is None or _flush_task.done())


def discard() -> None:
    """Forget every queued row (tests only: rows left by a failed test must not reach the next one)."""
    global _memory_current, _memory_rows
    with _lock:
        for segment in [*_closed, *([_journal.rotate()] if _journal else [])]:
            if segment is not None and _journal is not None:
                _journal.release(segment)
        _closed.clear()
        _memory_current, _memory_rows = None, 0
    _credential_notes.clear()


def shutdown() -> None:
    """Write what can be written; leave the rest in the journal (unlocked) for another process to replay."""
    if _has_work():
        write_pending()
    _close_connection()
    if _journal is not None:
        with _lock:
            for segment in _closed:
                journal.close_orphan(segment)  # unlocked: another process may replay it now
            _journal.close()
        try:
            _journal.directory.rmdir()  # only when empty: one directory per test database adds up
        except OSError:
            pass


atexit.register(shutdown)
