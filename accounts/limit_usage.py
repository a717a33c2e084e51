"""A key's limits and how much of each is used, for the teammate's own pages (/me/).

The figures live in the gateway's shared store, and accounts must not import
the gateway (tests/test_layering.py), so the gateway registers its reader here
at start (GatewayConfig.ready -> register()). Without a reader, limits are shown
without usage.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from accounts.models import ApiKey

Reader = Callable[[ApiKey], dict[str, Any]]
_reader: Reader | None = None


def register(reader: Reader) -> None:
    """Set the function that returns {limit name: used} for a key (gateway.limits.usage)."""
    global _reader
    _reader = reader


@dataclass(frozen=True)
class LimitLine:
    """One row of the limits table: what is limited, the limit, what is used of it, and the percent."""

    name: str
    limit: str
    used: str
    percent: int | None


def _percent(used: Any, limit: Any) -> int | None:
    try:
        return min(int(Decimal(used) * 100 / Decimal(limit)), 999) if limit else None
    except (ArithmeticError, TypeError, ValueError):
        return None


def limit_lines(api_key: ApiKey) -> list[LimitLine]:
    """The key's limits with their usage now; [] for a key without limits."""
    used: dict[str, Any] = {}
    if _reader is not None and api_key.revoked_at is None:
        try:
            used = _reader(api_key)
        except Exception:  # the page still shows the limits when the store is away
            used = {}

    def line(name: str, limit: Any, key: str, limit_text: str, fmt: Callable[[Any], str] = str) -> LimitLine:
        value = used.get(key)
        return LimitLine(name, limit_text, "—" if value is None else fmt(value),
                         None if value is None else _percent(value, limit))

    lines: list[LimitLine] = []
    if api_key.requests_per_minute:
        lines.append(line("Requests per minute", api_key.requests_per_minute, "requests_per_minute",
                          str(api_key.requests_per_minute)))
    if api_key.concurrency_limit:
        wait = f" (waits up to {api_key.queue_wait_seconds:g} s)" if api_key.queue_wait_seconds else ""
        lines.append(line("Concurrent requests", api_key.concurrency_limit, "concurrent",
                          f"{api_key.concurrency_limit}{wait}"))
    if api_key.daily_token_limit:
        lines.append(line("Tokens today (UTC)", api_key.daily_token_limit, "daily_tokens",
                          f"{api_key.daily_token_limit:,}", lambda v: f"{int(v):,}"))
    if api_key.monthly_token_budget:
        lines.append(line("Tokens this month", api_key.monthly_token_budget, "monthly_tokens",
                          f"{api_key.monthly_token_budget:,}", lambda v: f"{int(v):,}"))
    if api_key.monthly_cost_limit:
        lines.append(line("Estimated cost this month", api_key.monthly_cost_limit, "monthly_cost",
                          f"${Decimal(api_key.monthly_cost_limit):.2f}", lambda v: f"${Decimal(v):.2f}"))
    if api_key.pool_share_percent:
        share = used.get("share") or {}
        shown = ", ".join(f"{provider} {percent}%" for provider, percent in share.items() if percent) or "—"
        lines.append(LimitLine("Fair share of the pool (last 5 h)", f"{float(api_key.pool_share_percent):g}%",
                               shown, None))
    return lines
