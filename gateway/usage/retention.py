"""Retention: raw usage rows older than PROXYHUB_USAGE_RETENTION_DAYS are deleted once a day.

Only gateway_usagerecord is pruned; the hourly and daily rollups, and the
per-conversation daily rollup, are kept, so no report changes when records go. Deletes go in small batches (each its own short transaction,
so the writer is never blocked for long) and are idempotent, so every worker
may run the daily pass: after the first one of the day the others find
nothing to delete with one indexed query.
"""
from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, connections

from gateway.usage.store import RECORD_TABLE

logger = logging.getLogger(__name__)

BATCH = 5_000
DAY_SECONDS = 24 * 3600.0
FIRST_RUN_SECONDS = 60.0  # after start, so a restart storm does not prune while warming up


def prune(now: datetime, days: int, batch: int = BATCH) -> int:
    """Delete the raw usage rows created before ``now - days``; returns how many."""
    cutoff = connection.ops.adapt_datetimefield_value(now - timedelta(days=days))
    total = 0
    while True:
        with connection.cursor() as cursor:
            # Batches by id through the created_at index: a short lock per batch, on SQLite and Postgres alike.
            cursor.execute(
                f"DELETE FROM {RECORD_TABLE} WHERE id IN "
                f"(SELECT id FROM {RECORD_TABLE} WHERE created_at < %s ORDER BY created_at LIMIT %s)",
                [cutoff, batch])
            deleted = int(cursor.rowcount)
        total += max(deleted, 0)
        if deleted < batch:
            return total


def prune_configured(now: datetime) -> int:
    """prune() with PROXYHUB_USAGE_RETENTION_DAYS; 0 when it is unset."""
    days = settings.PROXYHUB_USAGE_RETENTION_DAYS
    if days is None:
        return 0
    try:
        deleted = prune(now, days)
    finally:
        connections.close_all()  # a background thread's connection, not a request's
    if deleted:
        logger.info("usage retention: deleted %d raw usage rows older than %d days", deleted, days)
    return deleted


async def run_retention() -> None:
    """Prune once soon after start, then daily (with jitter, so workers do not all run at once)."""
    from django.utils import timezone

    await asyncio.sleep(FIRST_RUN_SECONDS * (1 + random.random()))
    while True:
        if settings.PROXYHUB_USAGE_RETENTION_DAYS is not None:
            try:
                await asyncio.to_thread(prune_configured, timezone.now())
            except Exception:
                logger.exception("usage retention failed; trying again tomorrow")
        await asyncio.sleep(DAY_SECONDS * (0.95 + 0.1 * random.random()))
