"""The usage journal: rows on disk before the answer ends, orphans replayed once, bounds kept."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from django.db.models import Sum

from gateway.models import UsageRecord, UsageRollup
from gateway.usage import journal
from gateway.usage.journal import Journal
from gateway.usage.rows import UsageRow
from gateway.usage.store import write_rows

pytestmark = pytest.mark.django_db(transaction=True)


def _row(n: int, **fields) -> UsageRow:
    return UsageRow(endpoint="messages", provider="claude", requested_model="claude-sonnet-4-6",
                    input_tokens=10 * n, output_tokens=n, created_at=datetime(2026, 3, 1, 12, n, tzinfo=timezone.utc),
                    **fields)


def _replay(directory) -> int:
    """Replay every orphan in ``directory`` as a process of its own would; returns the rows new to the database."""
    new = 0
    scanner = Journal(directory, 1 << 30)
    for segment in scanner.orphans():
        new += journal.replay_segment(segment, write_rows, batch=2)[1]
        scanner.release(segment)
    return new


def test_a_line_holds_every_column_and_reads_back_equal():
    row = _row(7, key_prefix="ph_abc", ttfb_ms=None, stream=True)
    line = journal.encode(row)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert journal.decode(line) == row


def test_a_live_segment_is_never_replayed_and_a_dead_ones_rows_arrive_once(tmp_path):
    owner = Journal(tmp_path, 1 << 30)
    rows = [_row(n) for n in range(1, 6)]
    for row in rows:
        owner.append(row)
    assert _replay(tmp_path) == 0 and UsageRecord.objects.count() == 0  # its owner holds the lock
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(owner.current.path, copy / "dead-twin.jsonl")  # the same rows, in a second orphan
    owner.close()  # the owner is gone: its lock goes with it

    assert _replay(tmp_path) == 5
    assert _replay(copy) == 0  # replaying the same rows again inserts nothing and counts nothing
    assert sorted(UsageRecord.objects.values_list("uid", flat=True)) == sorted(r.uid for r in rows)
    day = UsageRollup.objects.filter(span="day").aggregate(requests=Sum("requests"), input=Sum("input_tokens"))
    assert day == {"requests": 5, "input": 150}
    assert not list(tmp_path.glob("*.jsonl")) and not list(copy.glob("*.jsonl"))


def test_a_torn_last_line_is_skipped_and_the_rest_is_replayed(tmp_path):
    owner = Journal(tmp_path, 1 << 30)
    for n in (1, 2):
        owner.append(_row(n))
    path = owner.current.path
    owner.close()
    whole = journal.encode(_row(3))
    with open(path, "ab") as f:
        f.write(whole[: len(whole) // 2])  # SIGKILL in the middle of a write
    assert _replay(tmp_path) == 2
    assert sorted(UsageRecord.objects.values_list("output_tokens", flat=True)) == [1, 2]
    assert not path.exists()


def test_a_process_killed_while_holding_a_segment_leaves_an_orphan(tmp_path):
    script = (
        "import os, sys, fcntl, time\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, sys.argv[2].encode())\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    line = journal.encode(_row(4)).decode()
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "other.jsonl"), line],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        assert _replay(tmp_path) == 0  # alive: its segment is left alone
        process.kill()
        process.wait(10)
        assert _replay(tmp_path) == 1
    finally:
        process.kill()
        process.wait(10)
        process.stdout.close()
    assert UsageRecord.objects.get().output_tokens == 4


def test_the_directory_bound_counts_every_process_and_refuses_rows_past_it(tmp_path):
    size = len(journal.encode(_row(1)))
    (tmp_path / "someone-else.jsonl").write_bytes(b"x" * size)
    bounded = Journal(tmp_path, 3 * size)
    bounded.measure()
    assert bounded.append(_row(1)) is not None and bounded.append(_row(2)) is not None
    assert bounded.append(_row(3)) is None  # the other process's bytes count too
    assert bounded.measure() == 3 * size


def test_the_journal_belongs_to_one_database(tmp_path):
    sqlite_a = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/a.sqlite3"}
    sqlite_b = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/b.sqlite3"}
    postgres = {"ENGINE": "django.db.backends.postgresql", "NAME": "db", "HOST": "h", "PORT": "5432", "PASSWORD": "s"}
    dirs = {journal.database_directory(tmp_path, d) for d in (sqlite_a, sqlite_b, postgres)}
    assert len(dirs) == 3
    assert journal.database_directory(tmp_path, {**postgres, "PASSWORD": "changed"}) in dirs
    assert all("s" not in d.name.split("-", 1)[0] or d.name.startswith(("sqlite3", "postgresql")) for d in dirs)


def test_segments_are_private_files(tmp_path):
    owner = Journal(tmp_path, 1 << 30)
    owner.append(_row(1))
    assert os.stat(owner.current.path).st_mode & 0o077 == 0
    owner.close()


def test_a_segment_its_process_died_creating_is_removed_once_old(tmp_path):
    stale, fresh = tmp_path / ".dead-1-00000001.tmp", tmp_path / ".dead-2-00000001.tmp"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    os.utime(stale, (time.time() - 120, time.time() - 120))
    assert _replay(tmp_path) == 0
    assert not stale.exists() and fresh.exists()  # a fresh one may be a live process's, about to be locked
