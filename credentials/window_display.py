"""Subscription windows as people read them: a label, a gauge level and a plain reset date. Pure.

The admin's credential page and list render these instead of the stored JSON
(credentials.window_state keeps the one stored shape; this only presents it).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, TypedDict

from credentials.window_state import window_list

WARN_PERCENT, FULL_PERCENT = 75.0, 95.0


class WindowGauge(TypedDict):
    """One window ready for a template: ``percent`` is clamped to 0..100 for the bar's width."""

    name: str
    label: str
    short: str  # for the list's narrow column: 5h, 7d, 7d opus
    used_percent: float
    percent: float
    level: str  # "ok", "warn" or "full": the gauge's colour
    resets_at: datetime | None
    resets_in: str


def window_label(name: str) -> str:
    """``5h`` -> "5-hour", ``7d`` -> "Weekly", ``7d_opus`` -> "Weekly (opus)", others as stored."""
    if name == "5h":
        return "5-hour"
    if name == "7d":
        return "Weekly"
    if name.startswith("7d_"):
        return f"Weekly ({name[3:].replace('_', ' ')})"
    return name


def duration_text(seconds: float) -> str:
    """"3 d 4 h", "2 h 05 min", "12 min", "now": the coarse remaining time a lead reads at a glance."""
    whole = int(seconds)
    if whole <= 0:
        return "now"
    days, hours, minutes = whole // 86400, whole % 86400 // 3600, whole % 3600 // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{max(minutes, 1)} min"


def gauges(windows: Mapping[str, Any] | None, now: datetime) -> list[WindowGauge]:
    """The account's windows, 5-hour first; a window whose reset has passed shows as refilled (0 %)."""
    out: list[WindowGauge] = []
    for view in window_list(windows):
        resets_at = datetime.fromisoformat(view["resets_at"]) if view["resets_at"] else None
        used = view["used_percent"]
        if resets_at is not None and resets_at <= now:
            used, resets_at = 0.0, None
        percent = min(max(used, 0.0), 100.0)
        level = "full" if percent >= FULL_PERCENT else "warn" if percent >= WARN_PERCENT else "ok"
        out.append({
            "name": view["name"], "label": window_label(view["name"]), "short": view["name"].replace("_", " "), "used_percent": used, "percent": percent,
            "level": level, "resets_at": resets_at,
            "resets_in": duration_text((resets_at - now).total_seconds()) if resets_at else "",
        })
    return out
