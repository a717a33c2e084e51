"""The steps a generation request takes before its upstream call, over HTTP (app.py) and WebSocket (websocket.py).

    new_request(scope)                  the Request: path normalised, request id adopted, client address kept
    authenticate(request)               its API key; RefusalError 401 (429 from the wrong-key throttle)
    usage_row(request, api_key, ...)    the usage row it leaves, whatever becomes of it
    resolve(api_key, endpoint, body)    the catalog entry and the model name's thinking level;
                                        RefusalError 400 (a required field), 404 (unknown model), 403 (not allowed)

then limits.admit() (its LimitExceededError is a RefusalError) and relay.relay().
"""
from __future__ import annotations

from typing import Any

from accounts.models import ApiKey
from gateway import catalog, keycache, keyguard
from gateway.catalog import Entry
from gateway.http import Request, Scope
from gateway.refusals import RefusalError
from gateway.request_context import adopt as adopt_request_id
from gateway.translate import model_suffix
from gateway.translate.errors import TranslationError
from gateway.usage.rows import UsageRow

TOO_DEEP = "Request body is nested too deeply."


def normalise_path(path: str) -> str:
    path = path.rstrip("/") or "/"
    # Guides often give Droid's anthropic provider a base URL ending in /v1 (PROTOCOLS.md §7.1).
    while path.startswith("/v1/v1/"):
        path = path[3:]
    return path


def new_request(scope: Scope) -> Request:
    """The request of an ASGI ``http`` or ``websocket`` scope, named by its x-request-id (or a new id)."""
    request = Request.from_scope(scope)
    request.path = normalise_path(scope["path"])
    request.request_id = adopt_request_id(request.headers.get("x-request-id"))
    request.extra["client"] = scope.get("client")  # (host, port): the wrong-key throttle counts per host
    return request


async def authenticate(request: Request) -> ApiKey:
    """The request's API key; raises RefusalError when it is missing, wrong, revoked or expired."""
    check = await keycache.acheck(request.api_key())
    if check.api_key is not None:
        return check.api_key
    # Failures only are counted per address (gateway.keyguard): a valid key behind the same NAT still works.
    wait = await keyguard.note_failure(request.extra.get("client"), request.headers.get("x-forwarded-for"))
    if wait is not None:
        seconds = int(wait + 0.999)
        raise RefusalError(429, keyguard.throttled_message(seconds), error_type="rate_limit_exceeded",
                           headers={"retry-after": str(seconds)})
    raise RefusalError(401, keyguard.refusal_message(check), error_type="invalid_api_key")


def usage_row(request: Request, api_key: ApiKey, endpoint: str, body: dict[str, Any], *, stream: bool,
              is_check: bool = False) -> UsageRow:
    """The row a request of ``api_key`` leaves; the relay fills in the rest as it goes."""
    return UsageRow(
        api_key_id=api_key.pk, user_id=api_key.user_id, key_prefix=api_key.prefix,
        endpoint=endpoint, requested_model=str(body.get("model") or "")[:100], stream=stream,
        request_id=request.request_id, is_check=is_check,
    )


async def resolve(api_key: ApiKey, endpoint: str, body: dict[str, Any]) -> tuple[Entry, str]:
    """The catalog entry for the body's model, and a thinking level given as ``model(level)``."""
    check_required_fields(endpoint, body)
    return await resolve_model(api_key, body)


def check_required_fields(endpoint: str, body: dict[str, Any]) -> None:
    """OpenAI answers a Responses request without ``input`` with this 400; the upstreams would not
    (Claude's translation made an empty conversation, Codex an empty answer)."""
    if endpoint == "responses" and body.get("input") is None:
        raise RefusalError(400, "Missing required parameter: 'input'.", error_type="missing_required_parameter",
                           param="input")


async def resolve_model(api_key: ApiKey, body: dict[str, Any]) -> tuple[Entry, str]:
    requested = body.get("model")
    if not isinstance(requested, str) or not requested:
        raise RefusalError(400, "`model` is required.", error_type="missing_model")
    name, thinking = model_suffix.split_model(requested)
    try:
        model_suffix.validate(thinking)
    except TranslationError as exc:
        raise RefusalError(400, exc.message, error_type="invalid_thinking_level") from None
    entry = await catalog.aresolve(name)
    if entry is None:
        allowed = [e.name for e in await catalog.aentries() if api_key.allows(e.name)]
        raise RefusalError(404, f"Unknown model {name!r}. Models this key may use: {', '.join(allowed) or 'none'}.",
                           error_type="model_not_found")
    if not (api_key.allows(name) or api_key.allows(entry.name)):
        raise RefusalError(403, f"This API key may not use model {name!r}.", error_type="model_not_allowed")
    return entry, thinking
