"""The batching usage writer: nothing queued is left behind."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from gateway.usage import writer as usage
from gateway.models import UsageRecord
from gateway.usage.rows import UsageRow


async def _closing_connections(scenario):
    """Run ``scenario``, then close the database connection the writer opened in asgiref's thread
    (left open, Postgres refuses to drop the test database)."""
    try:
        await scenario
    finally:
        await sync_to_async(connections.close_all)()


def _record(endpoint: str) -> UsageRow:
    return UsageRow(endpoint=endpoint, provider="codex")


@pytest.mark.django_db(transaction=True)
def test_a_record_queued_while_a_flush_is_writing_is_written_without_another_request(monkeypatch):
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 0.01)
    monkeypatch.setattr(usage, "_pending", [])  # a failure here must not leak records into later tests
    writing, release = threading.Event(), threading.Event()
    insert = usage._insert

    def slow_insert(batch):
        writing.set()
        release.wait(5)
        insert(batch)

    monkeypatch.setattr(usage, "_insert", slow_insert)

    async def scenario():
        usage.record_usage(_record("first"))
        await asyncio.to_thread(writing.wait, 5)
        usage.record_usage(_record("second"))  # the flush task is still busy writing "first"
        release.set()
        for _ in range(200):
            if usage.idle():
                return
            await asyncio.sleep(0.01)

    asyncio.run(_closing_connections(scenario()))
    assert sorted(UsageRecord.objects.values_list("endpoint", flat=True)) == ["first", "second"]
    assert usage.idle()


@pytest.mark.django_db(transaction=True)
def test_records_whose_key_update_fails_are_written_once(monkeypatch, api_key_factory):
    monkeypatch.setattr(usage, "_pending", [])
    api_key, _ = api_key_factory()

    def broken_touch(last_used):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(usage, "touch_last_used", broken_touch)
    record = _record("once")
    record.api_key_id = api_key.pk
    usage.record_usage(record)  # no running loop: written at once
    assert usage.write_pending() is True  # nothing left to write again
    assert list(UsageRecord.objects.values_list("endpoint", flat=True)) == ["once"]


@pytest.mark.django_db(transaction=True)
def test_a_refusing_database_is_retried_less_often_and_nothing_is_lost(monkeypatch):
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 0.01)
    monkeypatch.setattr(usage, "MAX_RETRY_SECONDS", 0.04)
    monkeypatch.setattr(usage, "_pending", [])
    attempts = []
    insert = usage._insert

    def flaky_insert(batch):
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise RuntimeError("database is down")
        insert(batch)

    monkeypatch.setattr(usage, "_insert", flaky_insert)

    async def scenario():
        usage.record_usage(_record("kept"))
        for _ in range(300):
            if usage.idle():
                return
            await asyncio.sleep(0.01)

    asyncio.run(_closing_connections(scenario()))
    assert len(attempts) == 4 and list(UsageRecord.objects.values_list("endpoint", flat=True)) == ["kept"]
    # Waits of 0.02, 0.04, 0.04 s after the failures (0.01 s each without the back-off); sleeps never run short.
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.019 and min(gaps[1:]) >= 0.039
