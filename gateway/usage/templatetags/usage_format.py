"""``{% load usage_format %}``: ``{{ cost|cost }}``, ``{{ tokens|compact }}``, ``{{ name|heading }}``,
``{{ rate|percent }}`` (gateway.usage.amounts)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from gateway.usage.amounts import column_label, compact_count, cost_text, percent_text

register = template.Library()


@register.filter
def cost(value: Decimal | float | None) -> str:
    """A cost in dollars, small ones kept visible: "$0.0042", not "$0.00"."""
    return cost_text(value)


@register.filter
def compact(value: int | None) -> str:
    """A count shortened to "9.9 M"."""
    return compact_count(value)


@register.filter
def heading(value: str) -> str:
    """A report column's readable heading: "Est. cost", not ``estimated_cost_usd``."""
    return column_label(str(value))


@register.filter
def count(value: int | None) -> str:
    """A whole number with thousands separators: "1,080,000"; None as "—"."""
    return "—" if value is None else f"{value:,}"


@register.filter
def cell(value: Any) -> Any:
    """A report table cell: a whole number with thousands separators (as the total line has), None as "—",
    a name as it is."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return value


@register.filter
def percent(value: float | None) -> str:
    """A share (0.566) as "56.6%"; None as "—"."""
    return percent_text(value)
