"""Reading subscription-window headers (PROTOCOLS.md §4.7, §5.8). Pure."""
from __future__ import annotations

import time
from typing import Any, Mapping

from credentials.window_state import window_name

_UNIFIED = "anthropic-ratelimit-unified-"


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def claude_windows(headers: Mapping[str, str]) -> dict[str, Any]:
    """``{"status": ..., "5h": {"utilization", "reset", "status"}, "7d": {...}}`` from unified headers."""
    out: dict[str, Any] = {}
    if headers.get(_UNIFIED + "status"):
        out["status"] = headers[_UNIFIED + "status"]
    if _num(headers.get(_UNIFIED + "reset")) is not None:
        out["reset"] = _num(headers.get(_UNIFIED + "reset"))
    for window in ("5h", "7d"):
        entry = {
            key: (_num(headers.get(f"{_UNIFIED}{window}-{key}")) if key != "status" else headers.get(f"{_UNIFIED}{window}-{key}"))
            for key in ("utilization", "reset", "status")
        }
        entry = {k: v for k, v in entry.items() if v is not None}
        if entry:
            out[window] = entry
    return out


def claude_rejected_until(headers: Mapping[str, str]) -> float | None:
    """Unix time a credential-scoped 429 lasts until, or None when it is a short throttle."""
    windows = claude_windows(headers)
    resets = []
    if windows.get("status") == "rejected" and windows.get("reset"):
        resets.append(windows["reset"])
    for window in ("5h", "7d"):
        entry = windows.get(window, {})
        if entry.get("status") == "rejected" and entry.get("reset"):
            resets.append(entry["reset"])
    return max(resets) if resets else None


def codex_windows(headers: Mapping[str, str]) -> dict[str, Any]:
    """Primary (5-hour) and secondary (weekly) usage from ``x-codex-*`` headers."""
    out: dict[str, Any] = {}
    now = time.time()
    for name in ("primary", "secondary"):
        used = _num(headers.get(f"x-codex-{name}-used-percent"))
        if used is None:
            continue
        entry: dict[str, Any] = {"utilization": used / 100.0}
        minutes = _num(headers.get(f"x-codex-{name}-window-minutes"))
        if minutes is not None:
            entry["window_minutes"] = minutes
        reset_at = _num(headers.get(f"x-codex-{name}-reset-at"))
        after = _num(headers.get(f"x-codex-{name}-reset-after-seconds"))
        if reset_at is None and after is not None:
            reset_at = now + after
        if reset_at is not None:
            entry["reset"] = reset_at
        # Named by length, as the usage poll names them: a plan may have only a weekly primary window.
        out[window_name(minutes) if minutes else ("5h" if name == "primary" else "7d")] = entry
    if headers.get("x-codex-plan-type"):
        out["plan"] = headers["x-codex-plan-type"]
    return out


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = _num(headers.get("retry-after"))
    return value if value is not None and value >= 0 else None
