"""The fake OAuth token endpoints of both providers (PROTOCOLS.md §4.4, §4.5, §5.2, §5.4).

    Claude  POST /v1/oauth/token  JSON bodies only (a form body is a 400)
    OpenAI  POST /oauth/token     authorization_code: form only;
                                  refresh_token: JSON or form

Both rotate refresh tokens: the old one dies on use.  Reuse answers in each
provider's own error shape: Claude 400 ``invalid_grant``, OpenAI 401 with
``error.code`` ``refresh_token_reused``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .faults import Fault
from .serving import Incoming, json_response, receive
from .tokens import CLAUDE_CLIENT_ID, CODEX_CLIENT_ID, TokenError

CLAUDE, CODEX = "claude_token", "codex_token"
CLAUDE_REFRESH_INVALID = "Refresh token not found or invalid"
CODEX_REFRESH_ERRORS = {
    "reused": (
        "refresh_token_reused",
        "Your refresh token has already been used to generate a new access token. Please try signing in again.",
    ),
    "expired": ("refresh_token_expired", "Your refresh token has expired. Please try signing in again."),
    "unknown": ("refresh_token_invalidated", "Your refresh token has been invalidated. Please try signing in again."),
}
CODE_ERRORS = {
    "unknown_code": "Invalid or expired authorization code",
    "pkce": "Invalid code verifier",
    "redirect_uri": "Redirect URI mismatch",
    "state": "Invalid state",
}


def build_claude_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/oauth/token", claude_token)
    return app


def build_codex_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/oauth/token", codex_token)
    return app


def _oauth_error(incoming: Incoming, status: int, error: str, description: str) -> web.Response:
    return json_response(incoming, status, {"error": error, "error_description": description})


def _fields(incoming: Incoming) -> dict[str, Any]:
    if isinstance(incoming.body, dict):
        return incoming.body
    return dict(incoming.form or {})


async def _apply_fault(incoming: Incoming, provider: str) -> web.Response | None:
    """token_slow delays, then the request goes on; token_error answers at once."""
    fault: Fault | None = incoming.world.faults.take(provider, _fields(incoming).get("refresh_token"))
    if fault is None:
        return None
    incoming.world.recorder.count(f"{provider}.fault.{fault.kind}")
    if fault.kind == "token_slow":
        await asyncio.sleep(float(fault.opts.get("delay", 0.5)))
        return None
    status = int(fault.opts.get("status", 400))
    body = fault.opts.get("body", {"error": "invalid_grant", "error_description": "Scripted token error"})
    return json_response(incoming, status, body, fault.opts.get("headers"))


# --- Claude ------------------------------------------------------------------


async def claude_token(request: web.Request) -> web.StreamResponse:
    incoming = await receive(request, CLAUDE)
    faulted = await _apply_fault(incoming, CLAUDE)
    if faulted is not None:
        return faulted
    if not isinstance(incoming.body, dict):
        return _oauth_error(incoming, 400, "invalid_request", "Request body must be JSON")
    body = incoming.body
    if body.get("client_id") != CLAUDE_CLIENT_ID:
        return _oauth_error(incoming, 400, "invalid_client", "Client authentication failed")
    grant = body.get("grant_type")
    incoming.world.recorder.count(f"{CLAUDE}.{grant}")
    try:
        if grant == "authorization_code":
            tokens = _exchange(incoming, "claude", body)
        elif grant == "refresh_token":
            tokens = incoming.world.tokens.refresh("claude", str(body.get("refresh_token")))
        else:
            return _oauth_error(incoming, 400, "unsupported_grant_type", f"Unsupported grant_type: {grant}")
    except TokenError as exc:
        message = CODE_ERRORS.get(exc.reason, CLAUDE_REFRESH_INVALID)
        return _oauth_error(incoming, 400, "invalid_grant", message)
    return json_response(incoming, 200, tokens)


def _exchange(incoming: Incoming, provider: str, fields: dict[str, Any]) -> dict[str, Any]:
    return incoming.world.tokens.exchange_code(
        provider,
        code=str(fields.get("code")),
        verifier=str(fields.get("code_verifier")),
        redirect_uri=str(fields.get("redirect_uri")),
        state=fields.get("state"),
    )


# --- OpenAI / Codex ----------------------------------------------------------


async def codex_token(request: web.Request) -> web.StreamResponse:
    incoming = await receive(request, CODEX)
    faulted = await _apply_fault(incoming, CODEX)
    if faulted is not None:
        return faulted
    fields = _fields(incoming)
    if fields.get("client_id") != CODEX_CLIENT_ID:
        return _oauth_error(incoming, 401, "invalid_client", "Unknown client_id")
    grant = fields.get("grant_type")
    incoming.world.recorder.count(f"{CODEX}.{grant}")
    if grant == "authorization_code":
        return _codex_code_grant(incoming, fields)
    if grant == "refresh_token":
        return _codex_refresh_grant(incoming, fields)
    return _oauth_error(incoming, 400, "unsupported_grant_type", f"Unsupported grant_type: {grant}")


def _codex_code_grant(incoming: Incoming, fields: dict[str, Any]) -> web.Response:
    # Codex's exchange is form-encoded; the OpenAI endpoint does not take JSON here.
    if incoming.form is None:
        return _oauth_error(incoming, 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
    try:
        tokens = _exchange(incoming, "codex", fields)
    except TokenError as exc:
        return _oauth_error(incoming, 400, "invalid_grant", CODE_ERRORS.get(exc.reason, "invalid_grant"))
    return json_response(incoming, 200, tokens)


def _codex_refresh_grant(incoming: Incoming, fields: dict[str, Any]) -> web.Response:
    try:
        tokens = incoming.world.tokens.refresh("codex", str(fields.get("refresh_token")))
    except TokenError as exc:
        code, message = CODEX_REFRESH_ERRORS.get(exc.reason, CODEX_REFRESH_ERRORS["unknown"])
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        return json_response(incoming, 401, body)
    return json_response(incoming, 200, tokens)
