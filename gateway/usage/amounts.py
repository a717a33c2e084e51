"""Token counts and costs as people read them: "9.9 M", "$0.0042", "<$0.0001". Pure."""
from __future__ import annotations

from decimal import Decimal

SMALLEST_COST = Decimal("0.000001")


def compact_count(n: float | None) -> str:
    """1234 -> "1.2 k", 9876543 -> "9.9 M", small numbers as they are (2.0 -> "2"); None -> "—"."""
    if n is None:
        return "—"
    for size, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= size:
            value = n / size
            return f"{value:.1f} {unit}" if abs(value) < 100 else f"{value:.0f} {unit}"
    return f"{n:g}"


def cost_text(usd: Decimal | float | None) -> str:
    """A cost that stays visible when small: "$12.35", "$0.42", "$0.0042", "<$0.000001", "$0" for nothing.

    Cents hide what a teammate's quick requests cost ($0.0042 shown as $0.00 reads as free); below a
    dollar the first two significant digits are kept, down to a millionth of a dollar (a one-token request).
    """
    if usd is None:
        return "—"
    value = Decimal(str(usd))
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) < SMALLEST_COST:
        return "<$0.000001"
    # Two significant digits, at least two decimals: 0.42 -> $0.42, 0.0042 -> $0.0042, 0.01234 -> $0.012.
    digits = max(2, -value.adjusted() + 1)
    text = f"{value:.{digits}f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


def percent_text(share: float | None) -> str:
    """A share (a report's rate, four decimals) as a percent with all its digits: 0.4695 -> "46.95%",
    0.75 -> "75%"; None -> "—".

    Not rounded again to one decimal: 0.4695 (from 0.469483) would show as 47.0%, and a float
    multiplication makes 0.4735 into 47.349999...
    """
    if share is None:
        return "—"
    text = f"{Decimal(str(share)) * 100:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


COLUMN_LABELS = {
    "api_key_id": "Key id", "key_prefix": "Key", "user_id": "User id", "user": "User", "model": "Model",
    "day": "Day", "credential_id": "Account id", "credential": "Account", "provider": "Provider",
    "requests": "Requests", "input_tokens": "Input", "output_tokens": "Output", "cache_read_tokens": "Cache read",
    "cache_write_tokens": "Cache write", "estimated_cost_usd": "Est. cost", "cache_hit_rate": "Cache hit rate",
    "conversation": "Conversation", "key_name": "Key name", "first_seen": "First seen", "last_seen": "Last seen",
    "models": "Models",
}


def column_label(name: str) -> str:
    """A report column's heading: "Est. cost" for ``estimated_cost_usd``; unknown names with spaces, capitalised."""
    return COLUMN_LABELS.get(name) or name.replace("_", " ").capitalize()
