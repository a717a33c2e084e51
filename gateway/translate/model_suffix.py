"""Thinking level in the model name, as CLIProxyAPI reads it: ``claude-sonnet-4-6(high)``,
``gpt-5.5(low)``, ``claude-opus-4-5-20251101(16000)``. Pure.

The suffix is cut off before the catalog lookup and applied to the upstream
body, overriding what the client sent: a level (minimal, low, medium, high,
xhigh, max, auto, none) or a thinking budget in tokens. Codex gets the level
as ``reasoning.effort`` (a budget is mapped to its level); Claude gets
adaptive thinking with ``output_config.effort`` on models that take it, else
a manual budget, with ``max_tokens`` raised above the budget.
"""
from __future__ import annotations

import re
from typing import Any

from gateway.translate.errors import TranslationError
from gateway.translate.mapping import (
    EFFORT_TO_BUDGET,
    adaptive_effort,
    budget_to_effort,
)
from gateway.translate.thinking_rules import MIN_BUDGET

_SUFFIX = re.compile(r"^(?P<name>.+?)\((?P<value>[^()]*)\)$")
LEVELS = ("minimal", "low", "medium", "high", "xhigh", "max", "auto", "none")


def split_model(model: str) -> tuple[str, str]:
    """``("claude-sonnet-4-6", "high")`` for ``"claude-sonnet-4-6(high)"``; no suffix gives ``""``."""
    match = _SUFFIX.match(model.strip())
    if not match:
        return model, ""
    return match["name"], match["value"].strip().lower()


def validate(value: str) -> None:
    if value and value not in LEVELS and not value.isdigit():
        raise TranslationError(f"Unknown thinking level ({value}) in the model name: use one of "
                               f"{', '.join(LEVELS)} or a token budget.", param="model")


def apply(body: dict[str, Any], value: str, *, upstream_format: str, adaptive: bool) -> dict[str, Any]:
    """``body`` (in the upstream's format) with the model-name thinking level applied."""
    if not value or value == "auto" and upstream_format == "responses":
        return body
    if upstream_format == "responses":
        effort = budget_to_effort(int(value)) if value.isdigit() else {"max": "xhigh"}.get(value, value)
        return {**body, "reasoning": {**(body.get("reasoning") or {}), "effort": effort}}
    return _claude(body, value, adaptive)


def _claude(body: dict[str, Any], value: str, adaptive: bool) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k != "thinking"}
    if value == "none":
        config = {k: v for k, v in (out.get("output_config") or {}).items() if k != "effort"}
        out.pop("output_config", None)
        if config:
            out["output_config"] = config
        return out
    if adaptive and not value.isdigit():
        effort = "medium" if value == "auto" else adaptive_effort(value)
        out["thinking"] = {"type": "adaptive"}
        out["output_config"] = {**(out.get("output_config") or {}), "effort": effort}
        return out
    budget = max(int(value) if value.isdigit() else EFFORT_TO_BUDGET.get(value, EFFORT_TO_BUDGET["medium"]),
                 MIN_BUDGET)
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if int(out.get("max_tokens") or 0) <= budget:
        out["max_tokens"] = budget + 1024
    return out
