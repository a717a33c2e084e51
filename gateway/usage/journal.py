"""An append-only local journal of usage rows, so a killed worker loses no answered request.

record_usage() appends each row as one JSON line to this process's current
segment (``os.write`` on an ``O_APPEND`` descriptor) before the request's last
byte goes out. No fsync: SIGKILL does not lose what the kernel already has,
and a power cut is not what this guards against. Once the writer committed
every row of a segment, the segment is deleted.

Each process holds an ``fcntl.flock`` on each of its segments for as long as
they exist, so the other processes sharing the directory can tell a live
segment from an orphan: a segment whose lock can be taken belongs to a process
that is gone, and replay_orphans() writes it through store.write_rows()
(idempotent: ``ON CONFLICT (uid)``) and deletes it.

The directory is PROXYHUB_JOURNAL_DIR plus one subdirectory per database, so
a journal is only ever replayed into the database its rows were meant for
(several test databases, or a changed DATABASE_URL, never mix).

Bounds: the whole directory holds at most PROXYHUB_JOURNAL_MAX_BYTES; past
that a row is not journaled and counts as dropped.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from django.conf import settings

from gateway.usage.rows import COLUMNS, UsageRow

logger = logging.getLogger(__name__)

SUFFIX = ".jsonl"
READ_CHUNK = 1 << 20


# One encoder for every line: json.dumps() with options builds a new encoder per call, which showed
# as a third of the cost of a journal append.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(row: UsageRow) -> bytes:
    """One journal line: the row's columns as compact JSON, newline-terminated."""
    data: dict[str, Any] = {name: getattr(row, name) for name in COLUMNS}
    data["created_at"] = row.created_at.isoformat()
    return (_ENCODER.encode(data) + "\n").encode()


def decode(line: bytes) -> UsageRow | None:
    """The row a journal line holds, or None for a torn or foreign line."""
    try:
        data = json.loads(line)
        known = {k: v for k, v in data.items() if k in COLUMNS}
        known["created_at"] = datetime.fromisoformat(known["created_at"])
        return UsageRow(**known)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def database_directory(base: Path, database: dict[str, Any]) -> Path:
    """``base``/<engine>-<hash of host, port and name>: one journal per database."""
    vendor = str(database.get("ENGINE", "")).rsplit(".", 1)[-1]
    identity = f"{vendor}|{database.get('HOST') or ''}|{database.get('PORT') or ''}|{database.get('NAME')}"
    return base / f"{vendor}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


@dataclass(eq=False)
class Segment:
    """One journal file and what the writer knows of it.

    ``rows`` are the segment's rows still held in memory, in file order;
    ``spilled`` means some rows live only on disk, so the writer reads the
    whole segment back from the file instead. ``committed`` rows (or bytes,
    ``offset``, for a spilled one) are in the database already.
    """

    path: Path | None  # None: memory only (the journal could not be opened)
    fd: int = -1
    rows: list[UsageRow] = field(default_factory=list)
    count: int = 0
    committed: int = 0
    size: int = 0
    offset: int = 0
    spilled: bool = False

    @property
    def waiting(self) -> int:
        return self.count - self.committed

    def read_batch(self, limit: int) -> tuple[list[UsageRow], int, int]:
        """Up to ``limit`` rows from the file after ``offset``: (rows, lines read, offset after them).

        Torn or unreadable lines are skipped; an unterminated last line is left
        for later if the segment may still grow, and skipped otherwise.
        """
        assert self.path is not None
        rows: list[UsageRow] = []
        lines = 0
        offset = self.offset
        with open(self.path, "rb") as f:
            f.seek(offset)
            buffer = b""
            while lines < limit:
                chunk = f.read(READ_CHUNK)
                if not chunk:
                    if buffer:  # a torn last line: the process died while writing it
                        offset += len(buffer)
                        _skip(self.path, buffer)
                    break
                buffer += chunk
                while lines < limit:
                    end = buffer.find(b"\n")
                    if end < 0:
                        break
                    line, buffer = buffer[:end + 1], buffer[end + 1:]
                    offset += len(line)
                    lines += 1
                    row = decode(line)
                    if row is None:
                        _skip(self.path, line)
                    else:
                        rows.append(row)
        return rows, lines, offset


def _skip(path: Path, line: bytes) -> None:
    logger.warning("skipped an unreadable usage journal line (%d bytes) in %s", len(line), path.name)


class Journal:
    """This process's segments in one directory: append(), rotate(), release(), and replay of orphans."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.current: Segment | None = None
        self.others_bytes = 0  # what other segments in the directory held when last measured
        self.own_bytes = 0  # this process's segments
        self._seq = 0
        self._prefix = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def append(self, row: UsageRow) -> Segment | None:
        """Write ``row`` to the current segment; returns the segment, or None when the row is not journaled
        (the directory is over its bound, or the write failed: the caller decides what to do with the row)."""
        line = encode(row)
        if self.own_bytes + self.others_bytes + len(line) > self.max_bytes:
            self.measure()
            if self.own_bytes + self.others_bytes + len(line) > self.max_bytes:
                return None
        segment = self.current or self._open()
        os.write(segment.fd, line)
        segment.size += len(line)
        segment.count += 1
        self.own_bytes += len(line)
        return segment

    def _open(self) -> Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"{self._prefix}-{self._seq:08d}"
        # Locked under a name replay ignores, then renamed: a scanner never sees an unlocked live segment.
        temp = self.directory / f".{name}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:  # another process removed the (empty) directory at its exit just now
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = self.directory / f"{name}{SUFFIX}"
        os.rename(temp, path)
        self.current = Segment(path, fd)
        return self.current

    def rotate(self) -> Segment | None:
        """Close the current segment to appends and return it (still locked); the next append opens another."""
        segment, self.current = self.current, None
        return segment

    def release(self, segment: Segment) -> None:
        """Delete a segment whose rows are all committed, then drop its lock."""
        if segment.path is None:
            return
        own = segment.path.name.startswith(self._prefix)
        if segment is self.current:
            self.current = None
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            if segment.fd >= 0:
                os.close(segment.fd)
                segment.fd = -1
        if own:
            self.own_bytes = max(0, self.own_bytes - segment.size)
        else:
            self.others_bytes = max(0, self.others_bytes - segment.size)

    def measure(self) -> int:
        """Re-read the sizes of the other processes' segments; returns the directory's total bytes."""
        total = 0
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.endswith(SUFFIX) and not entry.name.startswith(self._prefix):
                        try:
                            total += entry.stat().st_size
                        except FileNotFoundError:
                            pass
        except FileNotFoundError:
            pass
        self.others_bytes = total
        return total + self.own_bytes

    def orphans(self) -> Iterator[Segment]:
        """Each segment whose owner is gone, locked by us while the caller handles it.

        The caller either release()s it (replayed) or close_orphan()s it (to try again later).
        """
        try:
            names = sorted(p for p in os.listdir(self.directory) if p.endswith(SUFFIX))
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(self._prefix):
                continue
            segment = _lock_orphan(self.directory / name)
            if segment is not None:
                yield segment
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        """Delete segments a process died creating (locked under their temporary name, never renamed)."""
        for name in os.listdir(self.directory):
            if not (name.startswith(".") and name.endswith(".tmp")) or name.startswith(f".{self._prefix}"):
                continue
            path = self.directory / name
            try:
                if time.time() - path.stat().st_mtime < 60:  # maybe between its creation and its lock
                    continue
            except FileNotFoundError:
                continue
            segment = _lock_orphan(path)
            if segment is not None:
                path.unlink(missing_ok=True)
                close_orphan(segment)

    def close(self) -> None:
        """Drop the current segment's lock without deleting it (at exit: another process replays it)."""
        if self.current is not None and self.current.fd >= 0:
            os.close(self.current.fd)
            self.current.fd = -1
        self.current = None


def _lock_orphan(path: Path) -> Segment | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Another scanner may have replayed and unlinked it between our open and our lock.
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    size = os.fstat(fd).st_size
    return Segment(path, fd, count=0, size=size, spilled=True)


def close_orphan(segment: Segment) -> None:
    """Give up an orphan for now (the database refused it); its lock goes, the file stays."""
    if segment.fd >= 0:
        os.close(segment.fd)
        segment.fd = -1


def replay_segment(segment: Segment, write: Callable[[Sequence[UsageRow]], int], batch: int) -> tuple[int, int]:
    """Write every row of a spilled or orphaned segment from ``segment.offset`` on, ``batch`` rows per
    transaction; returns (rows read, rows new to the database). Raises the database's error, with
    ``segment.offset`` after the last committed batch."""
    read = new = 0
    while True:
        rows, lines, offset = segment.read_batch(batch)
        if not lines and offset == segment.offset:
            return read, new
        new += write(rows) if rows else 0
        read += len(rows)
        segment.offset = offset


def journal_directory() -> Path:
    """The configured journal directory for the default database."""
    base = Path(settings.PROXYHUB_JOURNAL_DIR)
    if not base.is_absolute():
        base = Path(settings.BASE_DIR) / base
    return database_directory(base, settings.DATABASES["default"])
