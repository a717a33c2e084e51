"""The batching usage writer: nothing queued is left behind."""
from __future__ import annotations

import asyncio
import threading

import pytest

from gateway import usage
from gateway.models import UsageRecord


def _record(endpoint: str) -> UsageRecord:
    from django.utils import timezone

    return UsageRecord(created_at=timezone.now(), endpoint=endpoint, provider="codex")


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

    asyncio.run(scenario())
    assert sorted(UsageRecord.objects.values_list("endpoint", flat=True)) == ["first", "second"]
    assert usage.idle()
