"""Usage per conversation (a Claude Code or Codex session, a ``prompt_cache_key``): the prompt cache's hit rate.

The report reads ConversationRollup, sums per UTC day, key, conversation and
model that the writer keeps in the same transaction as the records (as every
other report reads UsageRollup), so pruning old records never changes it and
a 90-day report sums rollups, not a million records:

- ordered by most recent (the default), it walks the rollups by last seen,
  newest first, only until it has met ``limit`` conversations, then sums just
  those through the ``(api_key_id, conversation, day)`` index;
- ordered by cost, every rollup of the period is summed and priced in SQL
  (a conversation's cost is known only from all of its rows), and only the
  ``limit`` costliest come back.

A period is whole UTC days: a Range is widened outwards to midnight (UTC) at
both ends, so "24h" shows yesterday (UTC) and today, and a conversation that
began before the period shows only its turns on the period's days. The other
reports cut the edges into hours; a conversation rollup per hour would be
about as many rows as records.

Rows whose client named no conversation (``conversation = ""``: a plain Chat
Completions or SDK client) are left out: they are one key's unrelated
requests, not a conversation, and the per-key report already counts them.
Key checks (``is_check``) are left out too: a check is never a conversation.
Neither is ever written to the rollup.

A row's cost uses reports.model_prices(), as every report; its hit rate is
reports.cache_hit_rate(): cache reads over the whole prompt (input + cache
read + cache write).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Max, Min, Q, QuerySet, Sum

from accounts.models import ApiKey
from gateway.usage import reports
from gateway.usage.models import ConversationRollup

ORDERS = ("recent", "cost")
LIMIT = 50
# The keys of a conversations() row shown in tables and files, in order (the CSV header); a row also
# holds api_key_id, for links, and model_list, the models as a list.
COLUMNS = ("conversation", "key_prefix", "key_name", "user", "first_seen", "last_seen", "requests", "models",
           "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", reports.COST,
           reports.HIT_RATE)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TOTAL_TOKENS = -1  # _Conversation.total(): every token kind
# Conversations summed per query (OR terms: SQLite refuses expressions nested 1,000 deep).
PAIRS_PER_QUERY = 200
# Rollup rows read per round trip while looking for the newest conversations.
SCAN_CHUNK = 2000
# The column per token sum, named as in the other reports.
TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")


@dataclass
class _Conversation:
    api_key_id: int | None
    conversation: str
    key_prefix: str = ""
    user_id: int | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    # model -> [requests, *TOKENS]: a conversation may switch models, each priced at its own rates
    per_model: dict[str, list[int]] = field(default_factory=dict)
    cost: Decimal | None = None

    def total(self, index: int) -> int:
        """The sum of one of [requests, *TOKENS] over the models, or of all tokens for TOTAL_TOKENS."""
        if index == TOTAL_TOKENS:
            return sum(sum(v[1:]) for v in self.per_model.values())
        return sum(v[index] for v in self.per_model.values())


def conversations(span: reports.Range, *, user: AbstractBaseUser | None = None, api_key: ApiKey | None = None,
                  order: str = "recent", limit: int = LIMIT) -> list[dict[str, Any]]:
    """The top ``limit`` conversations of ``span``, newest first (``order="recent"``, by last seen) or costliest
    first (``"cost"``; unpriced ones last), narrowed to one user's or one key's records when given.

    Each row has COLUMNS: the conversation id, its key's prefix and name, the key's owner, the first
    and last request in the span, the requests, the models used (most used first, comma-separated),
    the four token sums, the estimated cost (None when no model of it has prices) and the cache hit
    rate (None without prompt tokens). Raises ValueError for an unknown ``order``.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    days = _days(span)
    rollups = _rollups(days, user, api_key)
    if order == "recent":
        pairs = _newest(rollups, limit, days.since)
        prices = reports.model_prices() if pairs else {}
    else:
        prices = reports.model_prices()
        with reports._hashing():  # Postgres: the period's sums hash in memory
            pairs = _costliest(rollups, limit, prices)
    found = _summed_pairs(_rollups(days, None, None), pairs, user)
    for conv in found.values():
        conv.cost = _cost(conv, prices)
    if order == "recent":
        ranked = sorted(found.values(), key=lambda c: c.last_seen or EPOCH, reverse=True)
    else:
        ranked = sorted(found.values(), key=lambda c: (c.cost is not None, c.cost or 0, c.total(TOTAL_TOKENS)),
                        reverse=True)
    return _rows(ranked[:limit])


def _days(span: reports.Range) -> reports.Range:
    """``span`` widened outwards to whole UTC days: the rollup's granularity."""
    since = span.since.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) \
        if span.since else None
    until = None
    if span.until:
        until = span.until.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        if until != span.until:
            until += timedelta(days=1)
    return reports.Range(since, until)


def _rollups(days: reports.Range, user: AbstractBaseUser | None,
             api_key: ApiKey | None) -> QuerySet[ConversationRollup]:
    """The report's rollups: the days of ``days``, maybe of one user or key."""
    qs = ConversationRollup.objects.all()
    if days.since:
        qs = qs.filter(day__gte=days.since)
    if days.until:
        qs = qs.filter(day__lt=days.until)
    if user is not None:
        qs = qs.filter(user_id=user.pk)
    if api_key is not None:
        qs = qs.filter(api_key_id=api_key.pk)
    return qs


def _newest(rollups: QuerySet[ConversationRollup], limit: int, since: datetime | None) -> list[tuple[int, str]]:
    """The (key, conversation) pairs of the ``limit`` most recently active conversations, newest first.

    Reads the SCAN_CHUNK rollups seen last, then four times as many, and so on until it has met ``limit``
    conversations or read the whole period: a few queries over a last_seen index walked newest first, each
    complete in itself (a lazy cursor would need a transaction on Postgres, where Django's
    autocommit cursors are WITH HOLD and run the whole query first).
    """
    if since is not None:
        # The same bound on last_seen, the column the newest-first indexes lead with, so the walk stops there.
        rollups = rollups.filter(last_seen__gte=since)
    newest_first = rollups.order_by("-last_seen").values_list("api_key_id", "conversation")
    size = SCAN_CHUNK
    while True:
        chunk = list(newest_first[:size])
        seen = dict.fromkeys(chunk)
        if len(seen) >= limit or len(chunk) < size:
            return list(seen)[:limit]
        size *= 4


def _costliest(rollups: QuerySet[ConversationRollup], limit: int,
               prices: dict[str, reports.Prices]) -> list[tuple[int, str]]:
    """The (key, conversation) pairs of the ``limit`` costliest conversations: priced ones by cost, then the
    rest by tokens, ranked in SQL so only ``limit`` rows come back (a 90-day period holds a hundred
    thousand conversations at a million records, too many to fetch and price here).

    One GROUP BY per conversation over the rollup rows, each priced at its model's prices (a rollup row
    is already one model's): SQLite then reads the (api_key_id, conversation, day, model, tokens) index
    alone, in group order, with no sort but the final one (0.18 s over 90 days at a million records,
    where summing per model first and then per conversation sorted twice, 0.9 s).
    """
    inner, params = rollups.order_by().values_list("api_key_id", "conversation", "model",
                                                   *TOKENS).query.sql_with_params()
    tokens = " + ".join(f"g.{t}" for t in TOKENS)
    if not prices:
        cost, join, prices_params = "NULL", "", []
    else:
        # The prices as a small table joined on the model: one hash lookup per row, where a CASE with a
        # branch per catalog name, in numeric arithmetic, took Postgres 1.1 s over 90 days of records. In
        # doubles: this only ranks; the rows' costs are computed exactly (in Decimal) afterwards.
        double = "CAST(%s AS DOUBLE PRECISION)"
        values = ", ".join(f"(%s, {double}, {double}, {double}, {double})" for _ in prices)
        prices_params = [v for name, p in prices.items()
                         for v in (name, float(p.input), float(p.cache_read), float(p.cache_write), float(p.output))]
        cost = "SUM(" + " + ".join(f"g.{t} * p.{t}" for t in TOKENS) + ")"
        join = (f"LEFT JOIN (WITH prices (model, {', '.join(TOKENS)}) AS (VALUES {values}) "
                f"SELECT * FROM prices) p ON p.model = g.model")
    # NULLS LAST: Postgres puts NULLs first in a descending order, SQLite last; unpriced ones go last.
    sql = (f"SELECT g.api_key_id, g.conversation, {cost} AS cost, SUM({tokens}) AS tokens FROM ({inner}) g {join} "
           f"GROUP BY g.api_key_id, g.conversation ORDER BY cost DESC NULLS LAST, tokens DESC LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *prices_params, limit])
        return [(key_id, conv) for key_id, conv, *_ in cursor.fetchall()]


def _summed_pairs(rollups: QuerySet[ConversationRollup], pairs: list[tuple[int, str]],
                  user: AbstractBaseUser | None) -> dict[tuple[int, str], _Conversation]:
    """_summed() of just these conversations, each read through the (api_key_id, conversation, day) index.

    One ``(api_key_id = k AND conversation = c) OR ...`` term per pair, and nothing else naming the key
    or the user, so SQLite seeks each pair in that index. PAIRS_PER_QUERY pairs a query: SQLite nests
    each OR one level deeper and refuses 1,000 levels. A key's rows are its user's, so a user's pairs
    need no user filter, except keyless ones (api_key_id 0), which the user's filter keeps apart.
    """
    out: dict[tuple[int, str], _Conversation] = {}
    for start in range(0, len(pairs), PAIRS_PER_QUERY):
        terms = [Q(api_key_id=key_id, conversation=conv, **({"user_id": user.pk} if user and not key_id else {}))
                 for key_id, conv in pairs[start:start + PAIRS_PER_QUERY]]
        out.update(_summed(rollups.filter(reduce(or_, terms))))
    return out


def _summed(rollups: QuerySet[ConversationRollup]) -> dict[tuple[int, str], _Conversation]:
    """(key, conversation) -> its sums, from one GROUP BY per (key, conversation, model)."""
    group = ("api_key_id", "conversation", "model", "key_prefix", "user_id")
    sums = {f"s_{t}": Sum(t) for t in ("requests", *TOKENS)}
    rows = (rollups.values(*group).annotate(first=Min("first_seen"), last=Max("last_seen"), **sums)
            .order_by().values_list(*group, "first", "last", *sums))
    out: dict[tuple[int, str], _Conversation] = {}
    for key_id, conv, model, prefix, user_id, first, last, *numbers in rows:
        item = out.get((key_id, conv))
        if item is None:
            item = out[(key_id, conv)] = _Conversation(key_id, conv, prefix, user_id or None, first, last)
        item.first_seen = min(item.first_seen or first, first)
        item.last_seen = max(item.last_seen or last, last)
        into = item.per_model.setdefault(model, [0] * (1 + len(TOKENS)))
        for i, value in enumerate(numbers):
            into[i] += value or 0
    return out


def _cost(conv: _Conversation, prices: dict[str, reports.Prices]) -> Decimal | None:
    """Each model's tokens at its list prices; None when none of its models has prices (as reports do)."""
    cost: Decimal | None = None
    for model, sums in conv.per_model.items():
        priced = prices.get(model)
        if priced is not None:
            cost = (cost or Decimal(0)) + priced.cost(dict(zip(TOKENS, sums[1:])))
    return cost


def _rows(ranked: list[_Conversation]) -> list[dict[str, Any]]:
    """Report rows with the keys' names and owners (one query each)."""
    key_ids = {c.api_key_id for c in ranked} - {None, 0}
    keys = ApiKey.objects.filter(pk__in=key_ids).values_list("pk", "name", "user_id", "user__username")
    names: dict[int, str] = {}
    users: dict[int, str] = {}
    for pk, name, user_id, username in (keys if key_ids else ()):
        names[pk], users[user_id] = name, username
    # A deleted key's rows keep their user: one more query only for those.
    user_ids = {c.user_id for c in ranked} - {None} - set(users)
    if user_ids:
        users.update(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    out = []
    for c in ranked:
        # A rollup keeps a deleted key's id (the records' link is cleared): link only keys that still exist.
        key_id = c.api_key_id if c.api_key_id in names else None
        models = sorted(c.per_model, key=lambda m: (-c.per_model[m][0], m))
        row: dict[str, Any] = {
            "conversation": c.conversation, "api_key_id": key_id, "key_prefix": c.key_prefix,
            "key_name": "" if key_id is None else names[key_id], "user": users.get(c.user_id or 0),
            "first_seen": c.first_seen, "last_seen": c.last_seen, "requests": c.total(0),
            "models": ", ".join(m for m in models if m),
            "model_list": [m for m in models if m],
            **{kind: c.total(i + 1) for i, kind in enumerate(TOKENS)},
            reports.COST: None if c.cost is None else float(round(c.cost, 6))}
        row[reports.HIT_RATE] = reports.cache_hit_rate(row)
        out.append(row)
    return out
