"""Writing usage rows to the database: raw batched inserts plus their rollups, in one transaction.

write_rows() is the one write path: the gateway's writer, the journal replay
and ``usage_fixture`` all call it, so rollups are maintained the same way
everywhere. It inserts with ``ON CONFLICT (uid) DO NOTHING`` and adds to
the rollups only the rows it really inserted, so writing a batch twice (a
journal replayed after a crash) counts every request once.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import timezone
from typing import Any, Iterable, Sequence

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from accounts.models import ApiKey
from credentials.models import Credential

from gateway.usage.models import DURATION_BINS, DURATION_BOUNDS_MS, TTFB_BINS, TTFB_BOUNDS_MS
from gateway.usage.rows import COLUMNS, UsageRow, base_model

RECORD_TABLE = "gateway_usagerecord"
ROLLUP_TABLE = "gateway_usagerollup"
CONVERSATION_TABLE = "gateway_conversationrollup"
CONVERSATION_KEY = ("day", "api_key_id", "user_id", "key_prefix", "conversation", "model")
CONVERSATION_SUMS = ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
ROLLUP_KEY = ("span", "bucket", "api_key_id", "user_id", "key_prefix", "provider", "model", "credential_id", "outcome")
ROLLUP_SUMS = ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
               "reasoning_tokens", "duration_ms", "ttfb_ms", "ttfb_count", *DURATION_BINS, *TTFB_BINS)
CHUNK = 400  # rows per INSERT statement: 22 record columns (34 rollup columns) stay under SQLite's 32,766 parameters


def write_rows(rows: Sequence[UsageRow]) -> int:
    """Insert ``rows`` not yet in the database and add them to the rollups; returns how many were new.

    Raises the database's error (nothing is written then).
    """
    if not rows:
        return 0
    try:
        return _write(rows)
    except IntegrityError:
        # A key, user or credential was deleted while its request ran: keep the
        # rows, without the links that no longer exist.
        _drop_dangling_links(rows)
        return _write(rows)


def _write(rows: Sequence[UsageRow]) -> int:
    inserted: list[UsageRow] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            for start in range(0, len(rows), CHUNK):
                inserted += _insert_records(cursor, rows[start:start + CHUNK])
            _add_to_rollups(cursor, inserted)
            add_to_conversations(cursor, inserted)
    return len(inserted)


def _drop_dangling_links(rows: Sequence[UsageRow]) -> None:
    for model, attr in ((ApiKey, "api_key_id"), (get_user_model(), "user_id"), (Credential, "credential_id")):
        ids = {getattr(r, attr) for r in rows} - {None}
        alive = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
        for row in rows:
            if getattr(row, attr) not in alive:
                setattr(row, attr, None)


def _insert_records(cursor: Any, rows: Sequence[UsageRow]) -> list[UsageRow]:
    adapt = connection.ops.adapt_datetimefield_value
    placeholders = "(" + ",".join(["%s"] * len(COLUMNS)) + ")"
    params: list[Any] = []
    for row in rows:
        for name in COLUMNS:
            value = getattr(row, name)
            params.append(adapt(value) if name == "created_at" else value)
    cursor.execute(
        f"INSERT INTO {RECORD_TABLE} ({','.join(COLUMNS)}) VALUES {','.join([placeholders] * len(rows))} "
        f"ON CONFLICT (uid) DO NOTHING RETURNING uid", params)
    new = {r[0] for r in cursor.fetchall()}
    return [row for row in rows if row.uid in new]


def rollup_sums(rows: Iterable[UsageRow]) -> dict[tuple[Any, ...], list[int]]:
    """(span, bucket, ids, model, outcome) -> the ROLLUP_SUMS of ``rows``, for both spans."""
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(ROLLUP_SUMS))
    for row in rows:
        at = row.created_at.astimezone(timezone.utc)
        hour = at.replace(minute=0, second=0, microsecond=0)
        day = hour.replace(hour=0)
        identity = (row.api_key_id or 0, row.user_id or 0, row.key_prefix, row.provider,
                    base_model(row.requested_model)[:100], row.credential_id or 0, row.outcome)
        values = [1, row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens,
                  row.reasoning_tokens, row.duration_ms, row.ttfb_ms or 0, 0 if row.ttfb_ms is None else 1,
                  *_one_hot(DURATION_BOUNDS_MS, row.duration_ms), *_one_hot(TTFB_BOUNDS_MS, row.ttfb_ms)]
        for span, bucket in (("hour", hour), ("day", day)):
            total = sums[(span, bucket, *identity)]
            for i, v in enumerate(values):
                total[i] += v
    return sums


def _one_hot(bounds: tuple[int, ...], value: int | None) -> list[int]:
    """A histogram row for one value: 1 in its bucket (bisect_left: a value on a bound is in that bucket); none for None."""
    counts = [0] * (len(bounds) + 1)
    if value is not None:
        counts[bisect_left(bounds, value)] = 1
    return counts


def _add_to_rollups(cursor: Any, rows: Sequence[UsageRow]) -> None:
    if not rows:
        return
    adapt = connection.ops.adapt_datetimefield_value
    # Sorted, so concurrent writers lock rollup rows in the same order (no deadlock on Postgres).
    items = sorted(rollup_sums(rows).items(), key=lambda kv: tuple(str(v) for v in kv[0]))
    columns = (*ROLLUP_KEY, *ROLLUP_SUMS)
    placeholders = "(" + ",".join(["%s"] * len(columns)) + ")"
    updates = ",".join(f"{c} = {ROLLUP_TABLE}.{c} + excluded.{c}" for c in ROLLUP_SUMS)
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        params: list[Any] = []
        for key, values in chunk:
            params += [key[0], adapt(key[1]), *key[2:], *values]
        cursor.execute(
            f"INSERT INTO {ROLLUP_TABLE} ({','.join(columns)}) VALUES {','.join([placeholders] * len(chunk))} "
            f"ON CONFLICT ({','.join(ROLLUP_KEY)}) DO UPDATE SET {updates}", params)



def conversation_sums(rows: Iterable[UsageRow]) -> dict[tuple[Any, ...], list[Any]]:
    """(day, key, user, prefix, conversation, model) -> [*CONVERSATION_SUMS, first_seen, last_seen] of ``rows``
    that name a conversation and are not key checks (the per-conversation report leaves those out)."""
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        if not row.conversation or row.is_check:
            continue
        at = row.created_at.astimezone(timezone.utc)
        key = (at.replace(hour=0, minute=0, second=0, microsecond=0), row.api_key_id or 0, row.user_id or 0,
               row.key_prefix, row.conversation[:64], base_model(row.requested_model)[:100])
        total = sums.get(key)
        if total is None:
            sums[key] = [1, row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens, at, at]
            continue
        for i, v in enumerate((1, row.input_tokens, row.cache_read_tokens, row.cache_write_tokens,
                               row.output_tokens)):
            total[i] += v
        total[5] = min(total[5], at)
        total[6] = max(total[6], at)
    return sums


def add_to_conversations(cursor: Any, rows: Iterable[UsageRow]) -> None:
    """Upsert the conversation rollup rows of ``rows``: sums added, first/last seen widened."""
    sums = conversation_sums(rows)
    if not sums:
        return
    adapt = connection.ops.adapt_datetimefield_value
    # Sorted, as the other rollups, so concurrent writers lock rows in the same order (no deadlock on Postgres).
    items = sorted(sums.items(), key=lambda kv: tuple(str(v) for v in kv[0]))
    columns = (*CONVERSATION_KEY, *CONVERSATION_SUMS, "first_seen", "last_seen")
    placeholders = "(" + ",".join(["%s"] * len(columns)) + ")"
    t = CONVERSATION_TABLE
    # CASE, not min()/LEAST: the same SQL on SQLite and Postgres (SQLite's datetimes are ISO text, which
    # compares in time order).
    updates = ",".join([*(f"{c} = {t}.{c} + excluded.{c}" for c in CONVERSATION_SUMS),
                        f"first_seen = CASE WHEN excluded.first_seen < {t}.first_seen "
                        f"THEN excluded.first_seen ELSE {t}.first_seen END",
                        f"last_seen = CASE WHEN excluded.last_seen > {t}.last_seen "
                        f"THEN excluded.last_seen ELSE {t}.last_seen END"])
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        params: list[Any] = []
        for key, values in chunk:
            params += [adapt(key[0]), *key[1:], *values[:5], adapt(values[5]), adapt(values[6])]
        cursor.execute(
            f"INSERT INTO {t} ({','.join(columns)}) VALUES {','.join([placeholders] * len(chunk))} "
            f"ON CONFLICT ({','.join(CONVERSATION_KEY)}) DO UPDATE SET {updates}", params)
