"""Which conversation a request belongs to, for sticky credential choice. Pure.

Claude Code puts its session in ``metadata.user_id`` (a JSON string with
``session_id`` in new versions, ``..._session_<uuid>`` in old ones); Codex CLI
sends a ``session_id`` header and ``prompt_cache_key``. Other clients fall back
to the caller's key, which still keeps one teammate's prompt cache warm.
"""
from __future__ import annotations

import json
from typing import Any, Mapping


def conversation_key(headers: Mapping[str, str], body: Mapping[str, Any], fallback: str) -> str:
    session = headers.get("session_id") or headers.get("session-id") or headers.get("x-claude-code-session-id")
    if session:
        return session
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return cache_key
    user_id = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if isinstance(user_id, str) and user_id:
        return _claude_code_session(user_id)
    return fallback


def _claude_code_session(user_id: str) -> str:
    if user_id.startswith("{"):
        try:
            parsed = json.loads(user_id)
        except ValueError:
            return user_id
        if isinstance(parsed, dict) and parsed.get("session_id"):
            return str(parsed["session_id"])
    _, marker, session = user_id.rpartition("_session_")
    return session if marker else user_id
