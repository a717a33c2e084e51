"""Usage records, written off the hot path by a batching writer.

record_usage() only appends to a list; a task flushes the list to the database
every FLUSH_SECONDS in one bulk insert (plus the keys' last_used_at). At
process exit the rest is written synchronously, so an answered request's
record survives a normal shutdown.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from accounts.services import touch_last_used
from credentials.services import note_success
from gateway.usage import metrics
from gateway.usage.rows import UsageRow
from gateway.usage.store import write_rows

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
MAX_RETRY_SECONDS = 5.0

_pending: list[UsageRow] = []
_credential_notes: dict[int, dict[str, Any]] = {}
_flush_task: asyncio.Task[None] | None = None


def note_credential_use(credential_id: int, windows: dict[str, Any]) -> None:
    """Remember a credential's last use and window state; written with the next flush, once per credential."""
    _credential_notes[credential_id] = windows or _credential_notes.get(credential_id) or {}


def record_usage(record: UsageRow) -> None:
    """Queue one record; it reaches the database within FLUSH_SECONDS."""
    global _flush_task
    metrics.observe(record)
    _pending.append(record)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        write_pending()
        return
    if _flush_task is None or _flush_task.done():
        _flush_task = loop.create_task(_flush_later())


async def _flush_later() -> None:
    # Records queued while a write runs in its thread see this task still
    # running and start none of their own, so loop until nothing is left;
    # a database that refuses the write is retried less and less often.
    delay = FLUSH_SECONDS
    while True:
        await asyncio.sleep(delay)
        written = await aflush()
        if not (_pending or _credential_notes):
            return
        delay = FLUSH_SECONDS if written else min(delay * 2, MAX_RETRY_SECONDS)


async def aflush() -> bool:
    """See write_pending()."""
    if _pending or _credential_notes:
        return await sync_to_async(write_pending)()
    return True


def write_pending() -> bool:
    """Write every queued record now; False when the database refused them (they stay queued)."""
    _write_credential_notes()
    batch = _pending[:]
    del _pending[: len(batch)]
    if not batch:
        return True
    try:
        _insert(batch)
    except Exception:
        logger.exception("could not write %d usage records; keeping them for the next flush", len(batch))
        _pending[:0] = batch
        return False
    last_used: dict[int, datetime] = {}
    for r in batch:
        if r.api_key_id is not None:
            last_used[r.api_key_id] = max(r.created_at, last_used.get(r.api_key_id, r.created_at))
    try:
        touch_last_used(last_used)
    except Exception:  # the records are written: queueing them again would count them twice
        logger.exception("could not note the last use of %d keys", len(last_used))
    return True


def _write_credential_notes() -> None:
    notes: dict[int, dict[str, Any]] = {}
    while _credential_notes:  # popitem, unlike copy-then-clear, cannot drop a note added meanwhile
        credential_id, windows = _credential_notes.popitem()
        notes[credential_id] = windows
    for credential_id, windows in notes.items():
        try:
            note_success(credential_id, windows)
        except Exception:
            logger.exception("could not note the use of credential %s", credential_id)


def _insert(batch: list[UsageRow]) -> None:
    write_rows(batch)


def pending_count() -> int:
    return len(_pending)


def idle() -> bool:
    """True when nothing is queued or being written (tests wait for this)."""
    return not _pending and not _credential_notes and (_flush_task is None or _flush_task.done())


def _write_at_exit() -> None:
    if _pending or _credential_notes:
        close_old_connections()
        write_pending()


atexit.register(_write_at_exit)
