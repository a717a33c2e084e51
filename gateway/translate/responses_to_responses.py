"""Responses client, Codex upstream: the same format (PROTOCOLS.md §3, §5.6). Pure.

Only the model changes on the way up (``codex_body.prepare`` then applies the
backend's rules, shortening tool names over 64 characters); on the way back,
calls in the reply carry the client's names again (``tool_names.py``).
"""
from __future__ import annotations

from typing import Any

from gateway.translate.responses_to_responses_stream import RenamingStream
from gateway.translate.tool_names import renamed_back, with_client_names

__all__ = ["request", "response", "stream", "RenamingStream"]


def request(body: dict[str, Any], target: Any) -> dict[str, Any]:
    return {**body, "model": target.model}


def response(obj: dict[str, Any], client_body: dict[str, Any], model: str) -> dict[str, Any]:
    reverse = renamed_back(client_body)
    return with_client_names(obj, reverse) if reverse else obj


def stream(client_body: dict[str, Any], model: str) -> RenamingStream | None:
    """A renaming translator when the request had over-long tool names; None to pass bytes through."""
    reverse = renamed_back(client_body)
    return RenamingStream(reverse) if reverse else None
