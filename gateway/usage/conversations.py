"""Usage per conversation (a Claude Code or Codex session, a ``prompt_cache_key``): the prompt cache's hit rate.

The rollups have no conversation column, so this report reads UsageRecord,
and it is built to touch few rows at a million:

- ordered by most recent (the default), it walks the records newest first
  (the ``created_at`` index, or ``(api_key, created_at)`` / ``(user,
  created_at)`` when narrowed) only until it has met ``limit`` conversations,
  then sums just those through the ``(api_key, conversation, created_at)``
  index: a few thousand rows whatever the period;
- ordered by cost, every record of the period is summed (a conversation's
  cost is known only from all of its rows), so it costs what the period holds.

Rows whose client named no conversation (``conversation = ""``: a plain Chat
Completions or SDK client) are left out: they are one key's unrelated
requests, not a conversation, and the per-key report already counts them.
Key checks (``is_check``) are left out too: a check is never a conversation.

A row's cost uses reports.model_prices(), as every report; its hit rate is
reports.cache_hit_rate(): cache reads over the whole prompt (input + cache
read + cache write).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet, Sum

from accounts.models import ApiKey
from gateway.usage import reports
from gateway.usage.models import UsageRecord
from gateway.usage.rows import base_model

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
# Records read per round trip while looking for the newest conversations.
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
    records = _records(span, user, api_key)
    if order == "recent":
        pairs = _newest(records, limit)
        prices = reports.model_prices() if pairs else {}
    else:
        prices = reports.model_prices()
        with reports._hashing():  # Postgres: the period's sums hash in memory
            pairs = _costliest(records, limit, prices)
    found = _summed_pairs(_records(span, None, None), pairs, user)
    for conv in found.values():
        conv.cost = _cost(conv, prices)
    if order == "recent":
        ranked = sorted(found.values(), key=lambda c: c.last_seen or EPOCH, reverse=True)
    else:
        ranked = sorted(found.values(), key=lambda c: (c.cost is not None, c.cost or 0, c.total(TOTAL_TOKENS)),
                        reverse=True)
    return _rows(ranked[:limit])


def _records(span: reports.Range, user: AbstractBaseUser | None, api_key: ApiKey | None) -> QuerySet[UsageRecord]:
    """The report's records: in ``span``, not checks, with a conversation, maybe of one user or key."""
    qs = UsageRecord.objects.filter(span.record_filter(), is_check=False).exclude(conversation="")
    if user is not None:
        qs = qs.filter(user_id=user.pk)
    if api_key is not None:
        qs = qs.filter(api_key_id=api_key.pk)
    return qs


def _newest(records: QuerySet[UsageRecord], limit: int) -> list[tuple[int | None, str]]:
    """The (key, conversation) pairs of the ``limit`` most recently active conversations, newest first.

    Reads the newest SCAN_CHUNK records, then four times as many, and so on until it has met ``limit``
    conversations or read the whole period: a few queries over an index walked newest first, each
    complete in itself (a lazy cursor would need a transaction on Postgres, where Django's
    autocommit cursors are WITH HOLD and run the whole query first).
    """
    newest_first = records.order_by("-created_at").values_list("api_key_id", "conversation")
    size = SCAN_CHUNK
    while True:
        chunk = list(newest_first[:size])
        seen = dict.fromkeys(chunk)
        if len(seen) >= limit or len(chunk) < size:
            return list(seen)[:limit]
        size *= 4


def _costliest(records: QuerySet[UsageRecord], limit: int,
               prices: dict[str, reports.Prices]) -> list[tuple[int | None, str]]:
    """The (key, conversation) pairs of the ``limit`` costliest conversations: priced ones by cost, then the
    rest by tokens, ranked in SQL so only ``limit`` rows come back (a 90-day period holds a hundred
    thousand conversations at a million records, too many to fetch and price here).

    Sums per (model, key, conversation), then per conversation with each model's tokens at its prices
    (a ``model(level)`` name priced as its model). The model is the first GROUP BY column so SQLite
    reads the period through the created_at index: led by the key and the conversation, the grouping
    matched the (api_key, conversation, created_at) index and SQLite walked all of it, 0.4 s for 24 hours.
    """
    sums = {f"s_{t}": Sum(t) for t in TOKENS}
    inner, params = (records.values("requested_model", "api_key_id", "conversation").annotate(**sums).order_by()
                     .values_list("requested_model", "api_key_id", "conversation", *sums).query.sql_with_params())
    tokens = " + ".join(f"g.s_{t}" for t in TOKENS)
    if not prices:
        cost, join, prices_params = "NULL", "", []
    else:
        # The prices as a small table joined on the model: one hash lookup per group, where a CASE with a
        # branch per catalog name, in numeric arithmetic, took Postgres 1.1 s over 90 days. In doubles:
        # this only ranks; the rows' costs are computed exactly (in Decimal) afterwards.
        if connection.vendor == "postgresql":
            model = "split_part(g.requested_model, '(', 1)"
        else:
            model = "substr(g.requested_model, 1, instr(g.requested_model || '(', '(') - 1)"
        double = "CAST(%s AS DOUBLE PRECISION)"
        values = ", ".join(f"(%s, {double}, {double}, {double}, {double})" for _ in prices)
        prices_params = [v for name, p in prices.items()
                         for v in (name, float(p.input), float(p.cache_read), float(p.cache_write), float(p.output))]
        cost = "SUM(" + " + ".join(f"g.s_{t} * p.{t}" for t in TOKENS) + ")"
        join = (f"LEFT JOIN (WITH prices (model, {', '.join(TOKENS)}) AS (VALUES {values}) "
                f"SELECT * FROM prices) p ON p.model = {model}")
    # NULLS LAST: Postgres puts NULLs first in a descending order, SQLite last; unpriced ones go last.
    sql = (f"SELECT g.api_key_id, g.conversation, {cost} AS cost, SUM({tokens}) AS tokens FROM ({inner}) g {join} "
           f"GROUP BY g.api_key_id, g.conversation ORDER BY cost DESC NULLS LAST, tokens DESC LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *prices_params, limit])
        return [(key_id, conv) for key_id, conv, *_ in cursor.fetchall()]


def _summed_pairs(records: QuerySet[UsageRecord], pairs: list[tuple[int | None, str]],
                  user: AbstractBaseUser | None) -> dict[tuple[int | None, str], _Conversation]:
    """_summed() of just these conversations, each read through the (api_key, conversation, created_at) index.

    One ``(api_key = k AND conversation = c) OR ...`` term per pair, and nothing else naming the key
    or the user: SQLite (without statistics) then seeks each pair in that index, where with a
    ``api_key = k`` beside the ORs it read all of a busy key's rows through (api_key, created_at)
    (0.3 s instead of 5 ms over 90 days). PAIRS_PER_QUERY pairs a query: SQLite nests each OR one
    level deeper and refuses 1,000 levels. A key's rows are its user's, so a user's pairs need no
    user filter, except a deleted key's (api_key NULL), which the user's filter keeps apart.
    """
    out: dict[tuple[int | None, str], _Conversation] = {}
    for start in range(0, len(pairs), PAIRS_PER_QUERY):
        terms = [Q(api_key_id=key_id, conversation=conv) if key_id is not None else
                 Q(api_key_id__isnull=True, conversation=conv, **({"user_id": user.pk} if user else {}))
                 for key_id, conv in pairs[start:start + PAIRS_PER_QUERY]]
        out.update(_summed(records.filter(reduce(or_, terms))))
    return out


def _summed(records: QuerySet[UsageRecord]) -> dict[tuple[int | None, str], _Conversation]:
    """(key, conversation) -> its sums, from one GROUP BY per (key, conversation, model)."""
    group = ("api_key_id", "conversation", "requested_model", "key_prefix", "user_id")
    sums = {f"s_{t}": Sum(t) for t in TOKENS}
    rows = (records.values(*group).annotate(first=Min("created_at"), last=Max("created_at"), n=Count("id"), **sums)
            .order_by().values_list(*group, "first", "last", "n", *sums))
    out: dict[tuple[int | None, str], _Conversation] = {}
    for key_id, conv, model, prefix, user_id, first, last, n, *tokens in rows:
        item = out.get((key_id, conv))
        if item is None:
            item = out[(key_id, conv)] = _Conversation(key_id, conv, prefix, user_id, first, last)
        item.first_seen = min(item.first_seen or first, first)
        item.last_seen = max(item.last_seen or last, last)
        into = item.per_model.setdefault(base_model(model), [0] * (1 + len(TOKENS)))  # model(high) is its model
        for i, value in enumerate((n, *tokens)):
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
    key_ids = {c.api_key_id for c in ranked} - {None}
    keys = ApiKey.objects.filter(pk__in=key_ids).values_list("pk", "name", "user_id", "user__username")
    names, users = {}, {}
    for pk, name, user_id, username in (keys if key_ids else ()):
        names[pk], users[user_id] = name, username
    # A deleted key's rows keep their user: one more query only for those.
    user_ids = {c.user_id for c in ranked} - {None} - set(users)
    if user_ids:
        users.update(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    out = []
    for c in ranked:
        models = sorted(c.per_model, key=lambda m: (-c.per_model[m][0], m))
        row: dict[str, Any] = {
            "conversation": c.conversation, "api_key_id": c.api_key_id, "key_prefix": c.key_prefix,
            "key_name": names.get(c.api_key_id, ""), "user": users.get(c.user_id), "first_seen": c.first_seen,
            "last_seen": c.last_seen, "requests": c.total(0), "models": ", ".join(m for m in models if m),
            "model_list": [m for m in models if m],
            **{kind: c.total(i + 1) for i, kind in enumerate(TOKENS)},
            reports.COST: None if c.cost is None else float(round(c.cost, 6))}
        row[reports.HIT_RATE] = reports.cache_hit_rate(row)
        out.append(row)
    return out
