"""Subscription windows of an account: one stored shape, read from headers and from the usage endpoints. Pure.

``Credential.windows`` holds one entry per window, keyed by its name, as the
rate-limit headers already store it (gateway/upstream/ratelimits.py)::

    {"5h": {"utilization": 0.42, "reset": 1790000000.0},          # utilization is 0..1, reset unix seconds
     "7d": {"utilization": 0.87, "reset": 1790086400.0, "window_minutes": 10080},
     "7d_sonnet": {"utilization": 0.56, "reset": 1790086400.0},   # model-scoped weekly window (Claude)
     "status": "allowed", "reset": 1790000000.0, "plan": "pro"}   # non-window facts from headers

Names are ``5h``, ``7d`` and ``7d_<model>``; a window of another length is
named by its length (``1d``, ``90m``).  Everything outside this module reads
the public view, ``window_list()``: ``[{name, used_percent, resets_at}]``.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any, Mapping, TypedDict

FIVE_HOURS_MINUTES, WEEK_MINUTES = 300, 10080
_CLAUDE_NAMES = {"five_hour": "5h", "seven_day": "7d"}
_CLAUDE_SCOPED = re.compile(r"^seven_day_([a-z0-9_]+)$")
_CLAUDE_LIMIT_KINDS = {"session": "5h", "weekly_all": "7d"}


class WindowView(TypedDict):
    """One window as pool_status and routing see it."""

    name: str
    used_percent: float
    resets_at: str | None  # ISO 8601 UTC, or None when the window has not started


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _unix(value: Any) -> float | None:
    """Unix seconds from unix seconds (number or digits) or an ISO time; None otherwise."""
    number = _num(value)
    if number is not None:
        return number
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    return None


def window_name(minutes: float) -> str:
    """``5h`` and ``7d`` for the two subscription windows, else the length in days, hours or minutes."""
    whole = int(round(minutes))
    if whole == FIVE_HOURS_MINUTES:
        return "5h"
    if whole == WEEK_MINUTES:
        return "7d"
    if whole % 1440 == 0:
        return f"{whole // 1440}d"
    if whole % 60 == 0:
        return f"{whole // 60}h"
    return f"{whole}m"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _child(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``parent[key]`` when it is an object, else an empty one: answers are parsed defensively."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _entry(percent: float, reset: float | None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"utilization": percent / 100.0, **extra}
    if reset is not None:
        entry["reset"] = reset
    return entry


def claude_usage(data: Any) -> dict[str, Any]:
    """Windows from ``GET /api/oauth/usage`` (PROTOCOLS.md §4.8); a window answered as null maps to None.

    ``{"five_hour": {"utilization": 12, "resets_at": "2026-09-28T23:00:00Z"},
    "seven_day_opus": null}`` gives ``{"5h": {"utilization": 0.12, "reset": 1790636400.0},
    "7d_opus": None}``: merge() then drops what the account no longer has.
    """
    out: dict[str, Any] = {}
    if not isinstance(data, dict):
        return out
    for key, value in data.items():
        scoped = _CLAUDE_SCOPED.match(key) if isinstance(key, str) else None
        name = _CLAUDE_NAMES.get(key) or (f"7d_{scoped.group(1)}" if scoped else None)
        if name is None:
            continue
        if value is None:
            out[name] = None
            continue
        if not isinstance(value, dict):
            continue
        percent = _num(value.get("utilization", value.get("used_percentage")))
        if percent is not None:
            out[name] = _entry(percent, _unix(value.get("resets_at")))
    for name, entry in _claude_limits(data.get("limits")).items():
        if out.get(name) is None:  # the named keys win; limits[] fills in what they lack
            out[name] = entry
    return out


def _claude_limits(limits: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in limits if isinstance(limits, list) else []:
        if not isinstance(item, dict):
            continue
        percent = _num(item.get("percent", item.get("utilization")))
        kind = item.get("kind")
        name = _CLAUDE_LIMIT_KINDS.get(kind) if isinstance(kind, str) else None
        if kind == "weekly_scoped":
            model = _child(_child(item, "scope"), "model")
            label = model.get("display_name") or model.get("name")
            name = f"7d_{_slug(label)}" if isinstance(label, str) and _slug(label) else None
        if name is not None and percent is not None:
            out[name] = _entry(percent, _unix(item.get("resets_at")))
    return out


def codex_usage(data: Any, now: float | None = None) -> dict[str, Any]:
    """Windows and plan from ``GET /backend-api/wham/usage`` (PROTOCOLS.md §5.10).

    Windows are named by ``limit_window_seconds``, not by primary/secondary:
    a plan may have only a weekly primary window.
    """
    out: dict[str, Any] = {}
    if not isinstance(data, dict):
        return out
    rate_limit = _child(data, "rate_limit")
    for slot, fallback in (("primary_window", FIVE_HOURS_MINUTES), ("secondary_window", WEEK_MINUTES)):
        window = rate_limit.get(slot)
        if not isinstance(window, dict):
            continue
        percent = _num(window.get("used_percent"))
        if percent is None:
            continue
        seconds = _num(window.get("limit_window_seconds"))
        minutes = seconds / 60 if seconds else float(fallback)
        reset = _unix(window.get("reset_at"))
        after = _num(window.get("reset_after_seconds"))
        if reset is None and after is not None:
            reset = (time.time() if now is None else now) + after
        out[window_name(minutes)] = _entry(percent, reset, window_minutes=minutes)
    if isinstance(data.get("plan_type"), str) and data["plan_type"]:
        out["plan"] = data["plan_type"]
    return out


def merge(stored: Mapping[str, Any] | None, fresh: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` updated with ``fresh``: each window named in ``fresh`` replaces the stored one, None removes it.

    Headers report the 5-hour and weekly windows on every response, the usage
    endpoints also the model-scoped ones; merging keeps each source's
    windows instead of the last writer's set.
    """
    merged = dict(stored or {})
    for name, value in fresh.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _is_window(value: Any) -> bool:
    return isinstance(value, dict) and _num(value.get("utilization")) is not None


def _order(name: str) -> tuple[int, str]:
    return ({"5h": 0, "7d": 1}.get(name, 2), name)


def window_list(windows: Mapping[str, Any] | None) -> list[WindowView]:
    """The stored windows as ``[{name, used_percent, resets_at}]``: 5-hour, weekly, then the others by name."""
    out: list[WindowView] = []
    for name in sorted((n for n, v in (windows or {}).items() if _is_window(v)), key=_order):
        entry = (windows or {})[name]
        reset = _num(entry.get("reset"))
        out.append({
            "name": name,
            "used_percent": round(float(entry["utilization"]) * 100, 1),
            "resets_at": datetime.fromtimestamp(reset, tz=timezone.utc).isoformat() if reset is not None else None,
        })
    return out


def binding_percent(windows: Mapping[str, Any] | None, now: float) -> float | None:
    """Percent used of the binding window (the fullest one still running), or None when nothing is known.

    A window whose reset time has passed has refilled: it counts as 0 until
    the next header or poll says otherwise.
    """
    used: list[float] = []
    for value in (windows or {}).values():
        if not _is_window(value):
            continue
        reset = _num(value.get("reset"))
        used.append(0.0 if reset is not None and reset <= now else float(value["utilization"]) * 100)
    return max(used) if used else None
