"""The limit flags shared by ``issue_key`` and ``set_limits``: parsing them and applying them to a key."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import CommandError

from accounts.models import ApiKey
from credentials.groups import parse_groups

# flag dest -> ApiKey field
LIMIT_FIELDS = {
    "rpm": "requests_per_minute",
    "concurrency": "concurrency_limit",
    "queue_wait": "queue_wait_seconds",
    "daily_tokens": "daily_token_limit",
    "monthly_tokens": "monthly_token_budget",
    "monthly_cost": "monthly_cost_limit",
    "share": "pool_share_percent",
}
CLEARED: dict[str, Any] = {field: None for field in LIMIT_FIELDS.values()} | {"queue_wait_seconds": 0.0}


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if value < 0:
        raise ValueError(text)
    return value


def add_limit_arguments(parser: Any) -> None:
    """--rpm, --concurrency, --queue-wait, --daily-tokens, --monthly-tokens, --monthly-cost, --share (0 clears one)."""
    parser.add_argument("--rpm", type=int, help="requests per minute (0: no limit)")
    parser.add_argument("--concurrency", type=int, help="concurrent requests (0: no limit)")
    parser.add_argument("--queue-wait", type=float, dest="queue_wait",
                        help="seconds a request may wait for a concurrency slot (default 0: refused at once)")
    parser.add_argument("--daily-tokens", type=int, dest="daily_tokens",
                        help="tokens per UTC day: input + cache write + output (0: no limit)")
    parser.add_argument("--monthly-tokens", type=int, dest="monthly_tokens",
                        help="tokens per calendar month, counted as --daily-tokens (0: no limit)")
    parser.add_argument("--monthly-cost", type=_decimal, dest="monthly_cost",
                        help="estimated USD per calendar month from the catalog's list prices (0: no limit)")
    parser.add_argument("--share", type=_decimal,
                        help="percent of a provider's pool this key keeps while the pool is under pressure (0: none)")


def limit_changes(options: dict[str, Any]) -> dict[str, Any]:
    """The ApiKey fields the given flags set; 0 clears a limit."""
    changes: dict[str, Any] = {}
    for flag, field in LIMIT_FIELDS.items():
        value = options.get(flag)
        if value is None:
            continue
        if value < 0:
            raise CommandError(f"--{flag.replace('_', '-')} must not be negative")
        if flag == "share" and value > 100:
            raise CommandError("--share is a percent: at most 100")
        if flag == "queue_wait":
            changes[field] = float(value)
        else:
            changes[field] = value or None
    return changes


def groups_option(text: str | None) -> list[str] | None:
    """The --groups value as a list (None when the flag was not given)."""
    if text is None:
        return None
    try:
        return parse_groups(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def describe(api_key: ApiKey) -> str:
    """One line naming the key's limits, e.g. 'rpm 20, concurrency 2, monthly cost $5.00'; 'no limits'."""
    parts = []
    if api_key.requests_per_minute:
        parts.append(f"rpm {api_key.requests_per_minute}")
    if api_key.concurrency_limit:
        wait = f" (queue wait {api_key.queue_wait_seconds:g} s)" if api_key.queue_wait_seconds else ""
        parts.append(f"concurrency {api_key.concurrency_limit}{wait}")
    if api_key.daily_token_limit:
        parts.append(f"daily tokens {api_key.daily_token_limit}")
    if api_key.monthly_token_budget:
        parts.append(f"monthly tokens {api_key.monthly_token_budget}")
    if api_key.monthly_cost_limit:
        parts.append(f"monthly cost ${Decimal(api_key.monthly_cost_limit):.2f}")
    if api_key.pool_share_percent:
        parts.append(f"fair share {float(api_key.pool_share_percent):g}%")
    text = ", ".join(parts) or "no limits"
    return text + (f"; groups: {', '.join(api_key.groups)}" if api_key.groups else "")
