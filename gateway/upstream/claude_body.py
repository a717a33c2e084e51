"""Body and beta rules for Upstream A (Claude through a Claude Code OAuth token).

Pure: PROTOCOLS.md §4.6. The token only works for requests shaped like
Claude Code's: an identity first system block and the ``oauth-2025-04-20`` beta.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any, Iterable, Mapping

from gateway import fastjson
from gateway.translate import thinking_rules
from gateway.translate.mapping import FOREIGN_SIGNATURE_PREFIX

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
KNOWN_IDENTITIES = (
    IDENTITY,
    "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
)
BILLING_PREFIX = "x-anthropic-billing-header:"
OAUTH_BETA = "oauth-2025-04-20"


def merge_betas(client: str | None, ours: Iterable[str]) -> str:
    """Client betas first (order kept, duplicates removed), then ours that are missing."""
    seen: list[str] = []
    for beta in [*(client or "").split(","), *ours]:
        beta = beta.strip()
        if beta and beta not in seen:
            seen.append(beta)
    return ",".join(seen)


def _system_blocks(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}]
    return [b for b in system if isinstance(b, dict)]


def has_identity(system: Any) -> bool:
    """True when the system blocks already start like Claude Code's (after a billing block)."""
    blocks = _system_blocks(system)
    if blocks and str(blocks[0].get("text", "")).startswith(BILLING_PREFIX):
        blocks = blocks[1:]
    return bool(blocks) and str(blocks[0].get("text", "")).strip() in KNOWN_IDENTITIES


def is_claude_code(headers: Mapping[str, str], body: Mapping[str, Any]) -> bool:
    """Claude Code itself: its user agent or x-app header, and its identity block."""
    ua = headers.get("user-agent", "")
    return (ua.startswith("claude-cli/") or headers.get("x-app") == "cli") and has_identity(body.get("system"))


def with_identity(body: dict[str, Any]) -> dict[str, Any]:
    if has_identity(body.get("system")):
        return body
    identity: dict[str, Any] = {"type": "text", "text": IDENTITY}
    if _room_for_a_cache_mark(body):
        identity["cache_control"] = {"type": "ephemeral"}
    return {**body, "system": [identity, *_system_blocks(body.get("system"))]}


def _room_for_a_cache_mark(body: Mapping[str, Any]) -> bool:
    """At most 4 cache breakpoints, and a 5-minute mark may not precede a 1-hour one."""
    dumped = fastjson.dumps(body)  # the whole history: orjson is several times faster here
    return dumped.count(b'"cache_control":') < 4 and b'"ttl":"1h"' not in dumped


@lru_cache(maxsize=4096)  # two hashes and a dump per request, for a handful of distinct answers
def stable_user_id(credential_key: str, account_id: str, session_seed: str) -> str:
    """A Claude-Code-like ``metadata.user_id`` that stays the same per credential and client."""
    device = hashlib.sha256(f"device:{credential_key}".encode()).hexdigest()
    session = hashlib.sha256(f"session:{session_seed}".encode()).hexdigest()
    session_uuid = f"{session[:8]}-{session[8:12]}-4{session[13:16]}-a{session[17:20]}-{session[20:32]}"
    return json.dumps({"device_id": device, "account_uuid": account_id, "session_id": session_uuid},
                      separators=(",", ":"))


def drop_foreign_thinking(body: dict[str, Any]) -> dict[str, Any]:
    """Remove thinking blocks another provider signed (a GPT turn earlier in the conversation).

    Anthropic rejects any signature it did not issue; these carry ``openai:``.
    """
    messages = body.get("messages")
    # Looks at block dicts only: serialising the whole history to search it cost more on every request.
    if not isinstance(messages, list) or not any(
            _foreign_thinking(b) for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list)
            for b in m["content"]):
        return body
    cleaned = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            kept = [b for b in content if not _foreign_thinking(b)]
            if not kept:
                continue
            message = {**message, "content": kept}
        cleaned.append(message)
    # A GPT turn's thinking was just dropped, so its tool_use turn may now lack the
    # thinking block the API requires while thinking is on: nothing can stand in for it.
    return thinking_rules.off_for_unsigned_tool_turn({**body, "messages": cleaned})


def _foreign_thinking(block: Any) -> bool:
    return (isinstance(block, dict) and block.get("type") == "thinking"
            and str(block.get("signature", "")).startswith(FOREIGN_SIGNATURE_PREFIX))


def prepare(body: dict[str, Any], *, passthrough: bool, user_id: str) -> dict[str, Any]:
    """The body to send: Claude Code's own requests unchanged, others made Claude-Code-shaped."""
    body = drop_foreign_thinking(body)
    if passthrough:
        return body
    out = thinking_rules.enforce(with_identity(body))
    metadata = out.get("metadata") or {}
    if not metadata.get("user_id"):
        out["metadata"] = {**metadata, "user_id": user_id}
    return out
