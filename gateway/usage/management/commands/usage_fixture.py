"""usage_fixture: synthetic usage written through the gateway's own write path, for load and page tests.

    python manage.py usage_fixture --rows 1000000 --days 90 --keys 100 --seed 7

Rows go through gateway.usage.store.write_rows() in batches, exactly as the
gateway's writer sends them, so rollups (the per-conversation one too, and
anything else write_rows keeps) are maintained as in production. Each key works in conversations (a Claude
Code / Codex session) of up to two hours each; its Chat Completions rows name
none, as a plain Chat client sends no session. Users ``fixture-user-NN`` with keys
``fixture-NN`` and a few disabled, token-less ``fixture-*`` credentials are
created when missing (disabled, so the pool never routes real traffic
through them). ``--seed`` fixes the mix; every run adds new rows.
"""
from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Any, Iterator

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import issue_key
from credentials.models import Credential, Model
from gateway.usage.rows import Outcome, UsageRow
from gateway.usage.store import write_rows

BATCH = 5000
LEVELS = ("low", "medium", "high", "xhigh")
ENDPOINTS = {"claude": ("messages", "messages", "messages", "chat_completions"),
             "codex": ("responses", "responses", "chat_completions")}
# (outcome, weight, status code): most requests succeed, as in a healthy team.
# How long a fixture conversation lasts: a key's rows within one such window share a conversation.
SESSION_SECONDS = 7200
OUTCOMES = ((Outcome.OK, 950, 200), (Outcome.UPSTREAM_ERROR, 30, 529), (Outcome.CLIENT_CANCELLED, 15, 200),
            (Outcome.REJECTED, 5, 429))


@dataclass(frozen=True)
class Sender:
    """One fixture key, the models it mostly uses and how busy it is."""

    key_id: int
    user_id: int
    prefix: str
    models: tuple[tuple[str, str], ...]  # (name, provider)
    weight: float


class Command(BaseCommand):
    help = "Write N synthetic usage rows over the last D days through the gateway's write path."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rows", type=int, required=True)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--keys", type=int, default=10)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--batch", type=int, default=BATCH, help="rows per write_rows() call")

    def handle(self, *args: Any, **options: Any) -> None:
        rows, days, keys = options["rows"], options["days"], options["keys"]
        if rows < 0 or days < 1 or keys < 1 or options["batch"] < 1:
            raise CommandError("--rows must be >= 0, --days, --keys and --batch >= 1.")
        rng = random.Random(options["seed"])
        models = _catalog_models()
        senders = _senders(keys, models, rng)
        credentials = _credentials()
        _large_cache()
        started = time.monotonic()
        written = 0
        for batch in _batches(rows, days, senders, credentials, rng, options["batch"]):
            written += write_rows(batch)
        seconds = time.monotonic() - started
        self.stdout.write(f"Wrote {written} usage rows over {days} days for {len(senders)} keys "
                          f"in {seconds:.1f} s.")


def _large_cache() -> None:
    """On SQLite, a 256 MB page cache for this connection: a million random uids and request ids
    otherwise make every index insert a read from disk (the default cache is 2 MB)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size = -262144")


def _catalog_models() -> list[tuple[str, str]]:
    """(name, provider) of the catalog's Claude and GPT models."""
    found = [(m.name, m.provider) for m in Model.objects.filter(enabled=True).order_by("name")
             if m.name.startswith(("claude-", "gpt-"))]
    if not found:
        raise CommandError("The model catalog has no claude-* or gpt-* model; run migrate first.")
    return found


def _senders(count: int, models: list[tuple[str, str]], rng: random.Random) -> list[Sender]:
    """``count`` fixture keys (two per user), each with two to four favourite models."""
    user_model = get_user_model()
    out = []
    for n in range(count):
        name = f"fixture-{n:02d}"
        key = ApiKey.objects.filter(name=name, user__username__startswith="fixture-user-").first()
        if key is None:
            user, _ = user_model.objects.get_or_create(username=f"fixture-user-{n // 2:02d}")
            key, _raw = issue_key(user, name=name)
        favourites = tuple(rng.sample(models, k=min(len(models), rng.randint(2, 4))))
        # A few heavy users and a long tail, as real teams have.
        out.append(Sender(key.pk, key.user_id, key.prefix, favourites, rng.paretovariate(1.5)))
    return out


def _credentials() -> dict[str, list[int]]:
    """Provider -> credential ids: the existing ones, or three disabled fixture accounts per provider."""
    out: dict[str, list[int]] = {}
    for provider, _label in Credential._meta.get_field("provider").choices or []:
        ids = list(Credential.objects.filter(provider=provider).values_list("pk", flat=True))
        if not ids:
            ids = [Credential.objects.create(
                provider=provider, label=f"fixture-{provider}-{n}", status=Credential.Status.DISABLED,
                status_reason="usage_fixture account without tokens").pk for n in range(3)]
        out[str(provider)] = ids
    return out


def _batches(total: int, days: int, senders: list[Sender], credentials: dict[str, list[int]],
             rng: random.Random, size: int) -> Iterator[list[UsageRow]]:
    """``total`` rows, oldest first, in lists of ``size``.

    Each column of a batch is drawn in one rng.choices() call from a pool
    sampled once: a million rows in seconds rather than minutes of
    per-value random calls, with the same distributions.
    """
    now = timezone.now()
    start = now - timedelta(days=days)
    span = (now - start).total_seconds()
    # Sorted offsets: rows arrive in time order, as from a running gateway.
    offsets = sorted(rng.random() * span for _ in range(total))
    pools = _pools(rng)
    weights = [s.weight for s in senders]
    outcome_weights = [w for _o, w, _s in OUTCOMES]
    for first in range(0, total, size):
        n = min(size, total - first)
        columns = {name: rng.choices(pool, k=n) for name, pool in pools.items()}
        chosen = rng.choices(senders, weights=weights, k=n)
        picked = rng.choices(OUTCOMES, weights=outcome_weights, k=n)
        ids = os.urandom(32 * n).hex()  # not from the seed: a second run adds rows, it does not replay
        yield [_row(sender, start + timedelta(seconds=offsets[first + i]), picked[i], credentials,
                    {name: values[i] for name, values in columns.items()}, ids[64 * i:64 * i + 64])
               for i, sender in enumerate(chosen)]


def _pools(rng: random.Random) -> dict[str, list[Any]]:
    """Samples of each random column (token counts, durations, picks) to draw rows from."""
    size = 4096
    return {
        "pick": [rng.random() for _ in range(size)],  # model, credential, endpoint choice
        "level": [f"({rng.choice(LEVELS)})" if rng.random() < 0.15 else "" for _ in range(size)],
        "stream": [rng.random() < 0.7 for _ in range(size)],
        "duration": [int(rng.lognormvariate(8.0, 1.0)) for _ in range(size)],  # median about 3 s
        "ttfb": [int(rng.lognormvariate(6.5, 0.6)) for _ in range(size)],
        "input": [int(rng.lognormvariate(7.0, 1.3)) for _ in range(size)],
        "output": [int(rng.lognormvariate(6.0, 1.2)) for _ in range(size)],
        "cache_read": [int(rng.lognormvariate(10.0, 1.0)) if rng.random() < 0.8 else 0 for _ in range(size)],
        "cache_write": [int(rng.lognormvariate(7.5, 1.0)) if rng.random() < 0.3 else 0 for _ in range(size)],
        "attempts": [rng.randint(1, 4) for _ in range(size)],
    }


def _row(sender: Sender, at: datetime, outcome: tuple[str, int, int], credentials: dict[str, list[int]],
         draw: dict[str, Any], ids: str) -> UsageRow:
    pick = draw["pick"]
    name, provider = sender.models[int(pick * len(sender.models))]
    requested = name + draw["level"]
    kind, _weight, status = outcome
    rejected = kind == Outcome.REJECTED
    answered = kind in (Outcome.OK, Outcome.CLIENT_CANCELLED)
    endpoints = ENDPOINTS.get(provider, ("messages",))
    accounts = credentials[provider]
    output = draw["output"] if answered else 0
    endpoint = endpoints[int(pick * 7919) % len(endpoints)]
    return UsageRow(
        endpoint=endpoint, uid=ids[:32], request_id="req_" + ids[32:],
        created_at=at, api_key_id=sender.key_id, user_id=sender.user_id, key_prefix=sender.prefix,
        credential_id=None if rejected else accounts[int(pick * 104729) % len(accounts)], provider=provider,
        requested_model=requested, upstream_model=name, stream=draw["stream"], status_code=status, outcome=kind,
        error_type="" if answered else ("rate_limited" if rejected else "overloaded"),
        input_tokens=0 if rejected else draw["input"],
        cache_read_tokens=draw["cache_read"] if answered else 0,
        cache_write_tokens=draw["cache_write"] if answered else 0,
        output_tokens=output, reasoning_tokens=output // 3 if "(" in requested else 0,
        attempts=1 if answered or rejected else draw["attempts"], duration_ms=0 if rejected else draw["duration"],
        ttfb_ms=min(draw["duration"], draw["ttfb"]) if answered else None,
        conversation="" if endpoint == "chat_completions" else _conversation(sender.key_id, at),
    )


def _conversation(key_id: int, at: datetime) -> str:
    """A session id shaped like Claude Code's and Codex's (a UUID), the same for a key's rows in one window."""
    return _session_id(key_id, int(at.timestamp() // SESSION_SECONDS))


@lru_cache(maxsize=4096)
def _session_id(key_id: int, window: int) -> str:
    # Cached: rows arrive in time order, so a window's rows come together (a UUID each is 2 s a million).
    return str(uuid.UUID(int=(key_id << 64) | window))
