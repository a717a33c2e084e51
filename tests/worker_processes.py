"""Which processes of a multi-worker server hold its client connections (Linux /proc, no debug endpoint).

A worker that accepted a connection owns a socket whose local port is the server's: matching the
socket inodes in each descendant's /proc/PID/fd against /proc/net/tcp names the serving pids.
"""
from __future__ import annotations

import os
from pathlib import Path

ESTABLISHED = "01"


def descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def _established_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == ESTABLISHED:
                inodes.add(fields[9])
    return inodes


def pids_holding_connections(root: int, port: int) -> dict[int, int]:
    """For each process under ``root`` that holds accepted connections on ``port``: how many."""
    inodes = _established_inodes(port)
    held: dict[int, int] = {}
    for pid in descendants(root):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        count = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes)
        if count:
            held[pid] = count
    return held
