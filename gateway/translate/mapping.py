"""Tables shared by every translator: stop reasons, usage and reasoning effort.

PROTOCOLS.md §6.8 (stop reasons), §6.9 (usage), §6.10 (effort <-> thinking budget).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Usage:
    """Token counts as stored in a UsageRecord (PROTOCOLS.md §6.9).

    ``input`` is uncached input only; ``output`` includes reasoning.
    """

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0

    @property
    def prompt_total(self) -> int:
        return self.input + self.cache_read + self.cache_write

    @classmethod
    def from_anthropic(cls, u: dict[str, Any] | None) -> "Usage":
        u = u or {}
        return cls(
            input=int(u.get("input_tokens") or 0),
            cache_read=int(u.get("cache_read_input_tokens") or 0),
            cache_write=int(u.get("cache_creation_input_tokens") or 0),
            output=int(u.get("output_tokens") or 0),
        )

    def update_anthropic(self, u: dict[str, Any] | None) -> None:
        """Overlay a cumulative ``message_delta`` usage on a ``message_start`` one."""
        for wire, attr in _ANTHROPIC_FIELDS:
            value = (u or {}).get(wire)
            if value is not None:
                setattr(self, attr, int(value))

    @classmethod
    def from_responses(cls, u: dict[str, Any] | None) -> "Usage":
        u = u or {}
        total_in = int(u.get("input_tokens") or 0)
        details = u.get("input_tokens_details") or {}
        cached = int(details.get("cached_tokens") or 0)
        written = int(details.get("cache_write_tokens") or 0)
        out_details = u.get("output_tokens_details") or {}
        return cls(
            input=max(total_in - cached - written, 0),
            cache_read=cached,
            cache_write=written,
            output=int(u.get("output_tokens") or 0),
            reasoning=int(out_details.get("reasoning_tokens") or 0),
        )

    def to_anthropic(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": self.output,
        }

    def to_responses(self) -> dict[str, Any]:
        details: dict[str, int] = {"cached_tokens": self.cache_read}
        if self.cache_write:
            details["cache_write_tokens"] = self.cache_write
        return {
            "input_tokens": self.prompt_total,
            "input_tokens_details": details,
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.prompt_total + self.output,
        }

    def to_chat(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_total,
            "completion_tokens": self.output,
            "total_tokens": self.prompt_total + self.output,
            "prompt_tokens_details": {"cached_tokens": self.cache_read},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning},
        }


_ANTHROPIC_FIELDS = (
    ("input_tokens", "input"),
    ("cache_read_input_tokens", "cache_read"),
    ("cache_creation_input_tokens", "cache_write"),
    ("output_tokens", "output"),
)

# Anthropic stop_reason -> Chat finish_reason
ANTHROPIC_TO_CHAT_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def anthropic_to_responses_status(stop_reason: str | None) -> tuple[str, dict[str, str] | None]:
    """Return the Responses ``status`` and ``incomplete_details`` for a stop reason."""
    if stop_reason in ("max_tokens", "model_context_window_exceeded"):
        return "incomplete", {"reason": "max_output_tokens"}
    if stop_reason == "refusal":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def responses_to_anthropic_stop(status: str | None, incomplete_reason: str | None, has_tool_call: bool) -> str:
    if has_tool_call:
        return "tool_use"
    if status == "incomplete" and incomplete_reason == "max_output_tokens":
        return "max_tokens"
    if incomplete_reason == "content_filter":
        return "refusal"
    return "end_turn"


def responses_to_chat_finish(status: str | None, incomplete_reason: str | None, has_tool_call: bool) -> str:
    if has_tool_call:
        return "tool_calls"
    if status == "incomplete" and incomplete_reason == "max_output_tokens":
        return "length"
    if incomplete_reason == "content_filter":
        return "content_filter"
    return "stop"


EFFORT_TO_BUDGET = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768, "max": 32768}


def budget_to_effort(budget: int | None) -> str:
    """Map an Anthropic thinking budget to a reasoning effort (PROTOCOLS.md §6.10)."""
    if not budget:
        return "none"
    if budget <= 1024:
        return "low"
    if budget <= 8192:
        return "medium"
    if budget <= 24576:
        return "high"
    return "xhigh"


def adaptive_effort(effort: str) -> str:
    """Map an OpenAI effort to Anthropic ``output_config.effort`` for adaptive models."""
    return {"minimal": "low", "none": "low", "xhigh": "max"}.get(effort, effort)


@dataclass(frozen=True)
class Target:
    """What a request translator needs to know about the upstream model.

    ``model`` is the upstream model id; ``max_tokens`` the default output cap
    when the client sends none; ``adaptive_thinking`` is true for Claude models
    that take ``thinking: {type: "adaptive"}`` plus ``output_config.effort``.
    """

    model: str
    max_tokens: int = 32000
    adaptive_thinking: bool = False


# Reasoning that crosses providers is wrapped so each side can recognise (and
# drop) the other's opaque blob: an OpenAI ``encrypted_content`` handed to an
# Anthropic client becomes ``signature = "openai:" + blob``, and a Claude
# signature handed to a Responses client becomes ``encrypted_content =
# "anthropic:" + signature``. Neither upstream accepts the other's blob.
FOREIGN_SIGNATURE_PREFIX = "openai:"
ANTHROPIC_SIGNATURE_PREFIX = "anthropic:"
