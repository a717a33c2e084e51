"""The batching usage writer: nothing queued is left behind, a refusing database loses nothing, bounds hold."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone

import pytest
from django.db import OperationalError
from django.db.models import Sum

from gateway.models import UsageRecord, UsageRollup
from gateway.usage import journal, retention
from gateway.usage import writer as usage
from gateway.usage.journal import Journal
from gateway.usage.rows import UsageRow
from gateway.usage.store import write_rows

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def own_writer(tmp_path, monkeypatch, settings):
    """A writer of this test's own, journaling under tmp_path (the in-thread gateway's state is set aside)."""
    settings.PROXYHUB_JOURNAL_DIR = str(tmp_path / "journal")
    for name, value in (("_journal", None), ("_journal_checked", False), ("_closed", deque()),
                        ("_memory_current", None), ("_memory_rows", 0), ("_dropped", 0), ("_failing_since", None),
                        ("_warned", set()), ("_credential_notes", {}), ("_flush_task", None)):
        monkeypatch.setattr(usage, name, value)
    yield
    for segment in [*usage._closed, usage._journal.current if usage._journal else None]:
        if segment is not None:
            journal.close_orphan(segment)  # only drops the lock: the files are under tmp_path


def _row(endpoint: str = "messages", **fields) -> UsageRow:
    return UsageRow(endpoint=endpoint, provider="codex", **fields)


def _run(scenario) -> None:
    """Run ``scenario`` in an event loop, then close the connection the writer opened in its thread
    (left open, Postgres refuses to drop the test database)."""
    async def closing():
        try:
            await scenario
        finally:
            await usage._in_writer_thread(usage._close_connection)

    asyncio.run(closing())


async def _until_idle(limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not usage.idle() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def _journal_lines() -> int:
    return sum(p.read_bytes().count(b"\n") for p in usage.journal_path().glob("*.jsonl"))


def test_a_record_queued_while_a_flush_is_writing_is_written_without_another_request(monkeypatch):
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 0.01)
    writing, release = threading.Event(), threading.Event()

    def slow_write(batch):
        writing.set()
        release.wait(5)
        return write_rows(batch)

    monkeypatch.setattr(usage, "write_rows", slow_write)

    async def scenario():
        usage.record_usage(_row("first"))
        await asyncio.to_thread(writing.wait, 5)
        usage.record_usage(_row("second"))  # the flush task is still busy writing "first"
        release.set()
        await _until_idle()

    _run(scenario())
    assert sorted(UsageRecord.objects.values_list("endpoint", flat=True)) == ["first", "second"]
    assert usage.idle() and _journal_lines() == 0


def test_a_record_queued_while_the_flush_closes_its_connection_is_written_without_another_request(monkeypatch):
    # Closing a Postgres connection takes a moment: a row recorded then found the flush task still
    # running, started none, and waited for the next request (CI caught it on Postgres).
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 0.01)
    closing, release = threading.Event(), threading.Event()
    close = usage._close_connection

    def slow_close():
        if not closing.is_set():
            closing.set()
            release.wait(5)
        close()

    monkeypatch.setattr(usage, "_close_connection", slow_close)

    async def scenario():
        usage.record_usage(_row("first"))
        await asyncio.to_thread(closing.wait, 5)
        usage.record_usage(_row("second"))  # the flush task wrote "first" and is closing its connection
        release.set()
        await _until_idle()

    _run(scenario())
    assert sorted(UsageRecord.objects.values_list("endpoint", flat=True)) == ["first", "second"]
    assert usage.idle() and _journal_lines() == 0


def test_records_whose_key_update_fails_are_written_once(monkeypatch, api_key_factory):
    api_key, _ = api_key_factory()

    def broken_touch(last_used):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(usage, "touch_last_used", broken_touch)
    usage.record_usage(_row("once", api_key_id=api_key.pk))  # no running loop: written at once
    assert usage.write_pending() is True  # nothing left to write again
    assert list(UsageRecord.objects.values_list("endpoint", flat=True)) == ["once"]


def test_a_refusing_database_is_retried_less_often_and_nothing_is_lost(monkeypatch):
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 0.01)
    monkeypatch.setattr(usage, "MAX_RETRY_SECONDS", 0.04)
    attempts = []

    def flaky_write(batch):
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise OperationalError("database is down")
        return write_rows(batch)

    monkeypatch.setattr(usage, "write_rows", flaky_write)

    async def scenario():
        usage.record_usage(_row("kept"))
        await _until_idle()

    _run(scenario())
    assert len(attempts) == 4 and list(UsageRecord.objects.values_list("endpoint", flat=True)) == ["kept"]
    # Waits of 0.02, 0.04, 0.04 s after the failures (0.01 s each without the back-off); sleeps never run short.
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.019 and min(gaps[1:]) >= 0.039


def test_while_the_database_is_down_rows_wait_on_disk_with_bounded_memory_and_all_arrive(monkeypatch, caplog):
    monkeypatch.setattr(usage, "MAX_MEMORY_ROWS", 10)
    monkeypatch.setattr(usage, "BATCH_ROWS", 7)
    down = True

    def write(batch):
        if down:
            raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')
        return write_rows(batch)

    monkeypatch.setattr(usage, "write_rows", write)
    caplog.set_level(logging.INFO, logger="gateway.usage.writer")
    for n in range(1, 31):
        usage.record_usage(_row(input_tokens=n, output_tokens=2 * n))  # no loop: each tries to write at once
        assert usage.memory_rows() <= 10
    assert usage.waiting_rows() == 30 and _journal_lines() == 30 and UsageRecord.objects.count() == 0
    failing = [r for r in caplog.records if "usage writes are failing" in r.getMessage()]
    assert len(failing) == 1  # one line for thirty refused writes, no traceback
    assert failing[0].exc_info is None and "Connection refused" in failing[0].getMessage()

    down = False
    assert usage.write_pending() is True
    assert usage.waiting_rows() == 0 and usage.memory_rows() == 0 and _journal_lines() == 0
    totals = UsageRecord.objects.aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"))
    assert UsageRecord.objects.count() == 30 and (totals["i"], totals["o"]) == (465, 930)
    assert UsageRollup.objects.filter(span="hour").aggregate(r=Sum("requests"), i=Sum("input_tokens")) == \
        {"r": 30, "i": 465}
    assert len([r for r in caplog.records if "usage writes recovered" in r.getMessage()]) == 1


def test_rows_past_the_journal_bound_are_dropped_counted_and_logged_once(monkeypatch, settings, caplog):
    line = len(journal.encode(_row(input_tokens=1)))
    settings.PROXYHUB_JOURNAL_MAX_BYTES = 3 * line + line // 2
    monkeypatch.setattr(usage, "write_rows", lambda batch: (_ for _ in ()).throw(OperationalError("down")))
    caplog.set_level(logging.WARNING, logger="gateway.usage.writer")
    for _ in range(5):
        usage.record_usage(_row(input_tokens=1))
    assert usage.dropped_rows() == 2 and usage.waiting_rows() == 3 and _journal_lines() == 3
    assert usage.journal_bytes() == 3 * line
    assert len([r for r in caplog.records if "over PROXYHUB_JOURNAL_MAX_BYTES" in r.getMessage()]) == 1


def test_rows_the_database_refused_at_exit_stay_on_disk_for_another_process(monkeypatch):
    monkeypatch.setattr(usage, "write_rows", lambda batch: (_ for _ in ()).throw(OperationalError("down")))
    rows = [_row(input_tokens=n) for n in (1, 2, 3)]
    for row in rows:
        usage.record_usage(row)
    usage.shutdown()  # what atexit runs: it cannot write, so it leaves the segments behind, unlocked

    other = Journal(usage.journal_path(), 1 << 30)
    for segment in other.orphans():
        journal.replay_segment(segment, write_rows, batch=100)
        other.release(segment)
    assert sorted(UsageRecord.objects.values_list("uid", flat=True)) == sorted(r.uid for r in rows)


def test_the_replayer_writes_a_dead_workers_segment_and_deletes_it(tmp_path):
    dead = Journal(usage.journal.journal_directory(), 1 << 30)
    dead.append(_row(input_tokens=5))
    path = dead.current.path
    dead.close()
    assert usage.replay_orphans() == 1
    assert UsageRecord.objects.get().input_tokens == 5 and not path.exists()


def test_retention_prunes_old_raw_rows_in_batches_and_keeps_the_rollups():
    now = datetime(2026, 6, 30, 12, tzinfo=timezone.utc)
    ages = [1, 5, 29, 31, 45, 90, 91]
    write_rows([_row(input_tokens=days, created_at=now - timedelta(days=days)) for days in ages])
    before = UsageRollup.objects.filter(span="day").aggregate(r=Sum("requests"), i=Sum("input_tokens"))

    assert retention.prune(now, 30, batch=2) == 4
    assert sorted(UsageRecord.objects.values_list("input_tokens", flat=True)) == [1, 5, 29]
    assert retention.prune(now, 30, batch=2) == 0  # idempotent: another worker's pass finds nothing
    after = UsageRollup.objects.filter(span="day").aggregate(r=Sum("requests"), i=Sum("input_tokens"))
    assert after == before == {"r": 7, "i": sum(ages)}


def test_retention_is_off_unless_configured(settings):
    settings.PROXYHUB_USAGE_RETENTION_DAYS = None
    write_rows([_row(created_at=datetime(2020, 1, 1, tzinfo=timezone.utc))])
    assert retention.prune_configured(datetime(2026, 1, 1, tzinfo=timezone.utc)) == 0
    assert UsageRecord.objects.count() == 1


def test_a_spilled_segment_that_cannot_be_read_is_given_up_and_the_rows_after_it_still_arrive(monkeypatch, caplog):
    monkeypatch.setattr(usage, "MAX_MEMORY_ROWS", 1)
    down = True

    def write(batch):
        if down:
            raise OperationalError("down")
        return write_rows(batch)

    monkeypatch.setattr(usage, "write_rows", write)
    for n in (1, 2, 3):
        usage.record_usage(_row(input_tokens=n))  # row 1 in memory; 2 and 3 in a spilled segment
    spilled = [s for s in usage._closed if s.spilled] or [usage._journal.current]
    spilled[0].path.unlink()  # lost to an operator's rm
    down = False
    caplog.set_level(logging.ERROR, logger="gateway.usage.writer")
    assert usage.write_pending() is True
    usage.record_usage(_row(input_tokens=4))
    assert sorted(UsageRecord.objects.values_list("input_tokens", flat=True)) == [1, 4]
    assert usage.waiting_rows() == 0
    assert any("cannot be read" in r.getMessage() and "2 unwritten rows" in r.getMessage() for r in caplog.records)
