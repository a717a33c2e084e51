"""Nothing answered is lost: a worker killed mid-burst, and a database that is away for a while.

Both run real daphne processes against the session's test database (SQLite or Postgres,
whichever this run uses) with a journal directory of the test's own.
"""
from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from django.db import connection
from django.db.models import Sum

from gateway.models import UsageRecord, UsageRollup
from tests.servers import Server, TcpForwarder, daphne, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = 30
MESSAGE = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "count me"}]}
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _env(fake, database_url: str, journal: Path, **extra: str) -> dict[str, str]:
    return server_env(fake, database_url, PROXYHUB_BACKGROUND_REFRESH="false", PROXYHUB_JOURNAL_DIR=str(journal),
                      **extra)


def _journal_rows(journal: Path) -> list[dict]:
    rows = []
    for path in journal.glob("*/*.jsonl"):
        rows += [json.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]
    return rows


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


async def _stream(client: httpx.AsyncClient, url: str, key: str, request_id: str) -> bool:
    """One streamed /v1/messages; True when the whole answer arrived (the HTTP body ended cleanly)."""
    try:
        async with client.stream("POST", url + "/v1/messages", json={**MESSAGE, "stream": True},
                                 headers={"x-api-key": key, "x-request-id": request_id}) as response:
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
        return response.status_code == 200 and b"message_stop" in body
    except httpx.HTTPError:
        return False


async def _burst_then_kill(server: Server, key: str, kill_after: int) -> tuple[list[str], int]:
    """STREAMS staggered streams; SIGKILL the server once ``kill_after`` have completed.
    Returns the ids of the completed requests and how many were in flight at the kill."""
    completed: list[str] = []
    started = finished = 0
    enough = asyncio.Event()

    async def one(i: int, client: httpx.AsyncClient) -> None:
        nonlocal started, finished
        await asyncio.sleep(i * 0.03)
        started += 1
        request_id = f"kill-{i}-{uuid.uuid4().hex[:8]}"
        if await _stream(client, server.url, key, request_id):
            completed.append(request_id)
        finished += 1
        if len(completed) >= kill_after:
            enough.set()

    async with httpx.AsyncClient(timeout=30) as client:
        tasks = [asyncio.ensure_future(one(i, client)) for i in range(STREAMS)]
        await asyncio.wait_for(enough.wait(), 30)
        in_flight = started - finished
        await asyncio.to_thread(server.kill)
        await asyncio.gather(*tasks)
    return completed, in_flight


def test_a_worker_killed_mid_burst_loses_no_answered_request(
        tmp_path, catalog_seeded, fake, api_key_factory, credential_factory):
    credential_factory()
    _, key = api_key_factory()
    # Two workers sharing one journal directory, as a host's workers do; the survivor replays the other's.
    env = _env(fake, session_database_url(), tmp_path / "journal", PROXYHUB_JOURNAL_REPLAY_SECONDS="1")
    fake.add_fault("claude", "slow", times=STREAMS, delay=0.03)  # each stream takes a few hundred ms
    kill_after = random.randint(5, 20)

    with daphne(env) as first, daphne(env) as survivor:
        completed, in_flight = asyncio.run(_burst_then_kill(first, key, kill_after))
        assert first.process.returncode == -9
        assert kill_after <= len(completed) < STREAMS and in_flight > 0, (len(completed), in_flight)
        _wait(lambda: not list((tmp_path / "journal").glob("*/*.jsonl")), 20, "the survivor's replay")
    assert "replayed usage journal" in survivor.output
    ids = Counter(UsageRecord.objects.values_list("request_id", flat=True))
    missing = [r for r in completed if ids[r] != 1]
    assert not missing, f"{len(missing)} of {len(completed)} answered requests have no usage row"
    assert max(ids.values()) == 1  # and no row twice
    assert UsageRollup.objects.filter(span="day").aggregate(n=Sum("requests"))["n"] == sum(ids.values())


@contextmanager
def _outage(forwarder: TcpForwarder | None) -> Iterator[None]:
    """The server's database refuses: SQLite held under an exclusive lock, Postgres behind a cut forwarder."""
    if forwarder is not None:
        forwarder.cut()
        try:
            yield
        finally:
            forwarder.restore()
        return
    lock = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, timeout=10)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        lock.execute("ROLLBACK")
        lock.close()


@contextmanager
def _database_url() -> Iterator[tuple[str, TcpForwarder | None]]:
    url = session_database_url()
    if connection.vendor == "sqlite":
        yield url, None
        return
    d = connection.settings_dict
    with TcpForwarder(d["HOST"] or "127.0.0.1", int(d["PORT"] or 5432)) as forwarder:
        yield url.replace(f":{d['PORT'] or 5432}/", f":{forwarder.port}/"), forwarder


def test_while_the_database_is_away_the_gateway_serves_and_every_row_arrives_after(
        tmp_path, catalog_seeded, fake, api_key_factory, credential_factory):
    credential_factory()
    _, key = api_key_factory()
    journal = tmp_path / "journal"
    headers = {"x-api-key": key}

    def ask(client: httpx.Client, url: str, request_id: str, stream: bool) -> None:
        r = client.post(url + "/v1/messages", json={**MESSAGE, "stream": stream},
                        headers={**headers, "x-request-id": request_id})
        assert r.status_code == 200 and (b"message_stop" in r.content if stream else r.json()["content"])

    with _database_url() as (url, forwarder), httpx.Client(timeout=30) as client:
        # A short key cache, so the outage outlasts it: the key must be served from its last good answer.
        env = _env(fake, url, journal, PROXYHUB_KEY_CACHE_SECONDS="1")
        with daphne(env) as server:
            ask(client, server.url, "warm-stream", True)
            ask(client, server.url, "warm-json", False)
            _wait(lambda: UsageRecord.objects.count() == 2, 15, "the warm-up rows")
            per_request = {r.stream: r for r in UsageRecord.objects.all()}

            away = [f"away-{i}" for i in range(20)]
            with _outage(forwarder):
                started = time.monotonic()
                for i, request_id in enumerate(away):
                    ask(client, server.url, request_id, stream=i % 2 == 0)
                    time.sleep(0.15)
                on_disk = {row["request_id"] for row in _journal_rows(journal)}
                assert set(away) <= on_disk  # every answered row waits on disk
                assert UsageRecord.objects.count() == 2
                time.sleep(max(0.0, 7.0 - (time.monotonic() - started)))  # long enough for a failed write (SQLite waits 5 s)
            _wait(lambda: UsageRecord.objects.count() == 22, 40, "the rows to arrive after the outage")
            _wait(lambda: not _journal_rows(journal), 10, "the journal to empty")
            ask(client, server.url, "after", False)  # and the gateway still answers, from a fresh connection
            _wait(lambda: UsageRecord.objects.count() == 23, 15, "a row written after the outage")

    ids = Counter(UsageRecord.objects.values_list("request_id", flat=True))
    assert all(ids[r] == 1 for r in away) and max(ids.values()) == 1
    rows = UsageRecord.objects.filter(request_id__in=away)
    for token in TOKENS:
        expected = sum(getattr(per_request[i % 2 == 0], token) for i in range(20))
        assert rows.aggregate(t=Sum(token))["t"] == expected, token
    raw = UsageRecord.objects.aggregate(**{t: Sum(t) for t in TOKENS}, requests=Sum("attempts"))
    rolled = UsageRollup.objects.filter(span="hour").aggregate(**{t: Sum(t) for t in TOKENS}, requests=Sum("requests"))
    assert rolled == {**raw, "requests": 23}
    assert server.output.count("usage writes are failing") == 1, server.output[-3000:]
    assert server.output.count("usage writes recovered") == 1, server.output[-3000:]
