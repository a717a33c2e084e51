"""Reading token files: CLIProxyAPI claude-*.json / codex-*.json, Claude Code's
.credentials.json and Codex CLI's auth.json (PROTOCOLS.md §4.5, §5.3)."""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone
from typing import Any

from credentials.models import Provider
from credentials.oauth import TokenSet
from credentials.oauth.codex import token_set as codex_token_set


class ImportFormatError(ValueError):
    pass


def parse_token_file(data: Any) -> tuple[str, TokenSet]:
    """Return (provider, tokens) for a parsed token file; raises ImportFormatError."""
    if not isinstance(data, dict):
        raise ImportFormatError("not a JSON object")
    if isinstance(data.get("claudeAiOauth"), dict):
        return Provider.CLAUDE, _claude_code(data["claudeAiOauth"])
    if isinstance(data.get("tokens"), dict):
        return Provider.CODEX, _codex_cli(data["tokens"])
    kind = str(data.get("type") or "").lower()
    if kind == "claude":
        return Provider.CLAUDE, _cliproxy_claude(data)
    if kind == "codex":
        return Provider.CODEX, _cliproxy_codex(data)
    raise ImportFormatError("unrecognised token file (expected Claude Code, Codex CLI or CLIProxyAPI format)")


def _require(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ImportFormatError(f"missing {what}")
    return value


def _claude_code(o: dict[str, Any]) -> TokenSet:
    expires = o.get("expiresAt")
    return TokenSet(
        access_token=_require(o.get("accessToken"), "accessToken"),
        refresh_token=o.get("refreshToken") or "",
        expires_at=datetime.fromtimestamp(int(expires) / 1000, tz=dt_timezone.utc) if expires else None,
        plan=str(o.get("subscriptionType") or ""),
    )


def _cliproxy_claude(o: dict[str, Any]) -> TokenSet:
    return TokenSet(
        access_token=_require(o.get("access_token"), "access_token"),
        refresh_token=o.get("refresh_token") or "",
        expires_at=_parse_time(o.get("expired") or o.get("expires_at")),
        email=str(o.get("email") or ""),
        account_id=str(o.get("account_uuid") or o.get("account_id") or ""),
    )


def _codex_cli(tokens: dict[str, Any]) -> TokenSet:
    _require(tokens.get("access_token"), "tokens.access_token")
    return codex_token_set(tokens, previous=None)


def _cliproxy_codex(o: dict[str, Any]) -> TokenSet:
    _require(o.get("access_token"), "access_token")
    ts = codex_token_set(o, previous=None)
    ts.email = ts.email or str(o.get("email") or "")
    ts.expires_at = ts.expires_at or _parse_time(o.get("expired"))
    return ts


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)
