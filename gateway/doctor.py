"""Checking a key end to end: one tiny streaming request with one tool per model, as a client sends it.

The check goes out over real HTTP to the server's public base URL (PROXYHUB_PUBLIC_URL), so a base
URL that does not reach ProxyHub is itself found. Claude models are asked through /v1/messages (the
Anthropic format Claude Code uses), GPT models through /v1/responses (Codex's format). Each request
carries ``x-proxyhub-check: 1``, so its usage row is marked as a check. The raw key is needed (only a
hash is stored): the caller passes it in and it is never logged, stored or put into a result.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Sequence

import httpx

from accounts import keys
from accounts.client_configs import ModelInfo
from accounts.models import ApiKey
from accounts.services import digest
from credentials.models import Model

CHECK_HEADER = "x-proxyhub-check"
PROMPT = "This is a ProxyHub key check. Call the tool get_time once, with no text."
TOOL_NAME = "get_time"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)
PARALLEL = 4  # models checked at once: enough to be quick, few enough to spare the accounts


@dataclass(frozen=True)
class ModelCheck:
    """One model's result: ``ok``, what happened (``detail``) and, when it failed, how to fix it."""

    model: str
    provider: str
    endpoint: str
    ok: bool
    detail: str
    fix: str = ""
    status: int | None = None
    tool_called: bool = False


def endpoint_for(provider: str) -> str:
    return "/v1/messages" if provider == "claude" else "/v1/responses"


def _request(base_url: str, raw_key: str, model: ModelInfo) -> tuple[str, dict[str, str], dict[str, Any]]:
    url = base_url.rstrip("/") + endpoint_for(model.provider)
    if model.provider == "claude":
        headers = {"x-api-key": raw_key, "anthropic-version": "2023-06-01"}
        body: dict[str, Any] = {
            "model": model.name, "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": PROMPT}],
            "tools": [{"name": TOOL_NAME, "description": "The current time.",
                       "input_schema": {"type": "object", "properties": {}}}],
        }
    else:
        headers = {"authorization": f"Bearer {raw_key}"}
        body = {
            "model": model.name, "stream": True, "store": False,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": PROMPT}]}],
            "tools": [{"type": "function", "name": TOOL_NAME, "description": "The current time.",
                       "parameters": {"type": "object", "properties": {}}}],
        }
    headers.update({CHECK_HEADER: "1", "content-type": "application/json", "accept": "text/event-stream"})
    return url, headers, body


def _error_message(text: str) -> str:
    """The message of an Anthropic or OpenAI error body, else the start of the text."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(data, dict) and isinstance(data.get("response"), dict):  # response.failed
        return _error_message(json.dumps(data["response"]))
    return text.strip()[:200]


def _is_proxyhub_error(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("error"), dict)


def diagnose(base_url: str, model: ModelInfo, status: int, text: str) -> tuple[str, str]:
    """(what failed, how to fix it), in plain words, for an HTTP error answer."""
    message = _error_message(text)
    path = endpoint_for(model.provider)
    if not _is_proxyhub_error(text) or status in (404, 405) and "model" not in message.lower():
        return (f"The base URL {base_url} does not reach ProxyHub ({status} at {path}).",
                "Set PROXYHUB_PUBLIC_URL to the address clients use to reach this server, "
                "e.g. http://proxyhub.example:8317 (no /v1).")
    if status == 401:
        return f"The key was refused: {message}", "Issue a new key (this one is revoked, expired or mistyped)."
    if status in (403, 404):
        return (f"This key may not use {model.name}: {message}",
                "Add the model to the key's allowed models (admin → API keys), or use a key that allows it.")
    if status == 429:
        return (f"A limit was reached: {message}",
                "Wait until the limit resets, or raise it (admin → API keys, or `manage.py set_limits`).")
    if status == 503:
        return (f"No ready account: {message}",
                "Connect an account, or re-login or re-enable one, in admin → Credentials.")
    return (f"The upstream refused the request ({status}): {message}",
            "See the account's last error in admin → Credentials; test or refresh it there.")


def _read_stream(provider: str, lines: Sequence[str]) -> tuple[bool, bool, str]:
    """(finished, tool called, error message) from the SSE data lines of a streamed answer."""
    finished = tool = False
    error = ""
    for line in lines:
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except ValueError:
            continue
        kind = event.get("type", "") if isinstance(event, dict) else ""
        if kind in ("message_stop", "response.completed"):
            finished = True
        elif kind in ("error", "response.failed"):
            error = _error_message(json.dumps(event))
        elif kind == "content_block_start" and event.get("content_block", {}).get("type") == "tool_use":
            tool = True
        elif kind == "response.output_item.done" and event.get("item", {}).get("type") == "function_call":
            tool = True
    return finished, tool, error


async def check_model(client: httpx.AsyncClient, base_url: str, raw_key: str, model: ModelInfo) -> ModelCheck:
    """Send the check request for one model and say what came back."""
    url, headers, body = _request(base_url, raw_key, model)
    path = endpoint_for(model.provider)
    result = dict(model=model.name, provider=model.provider, endpoint=path)
    try:
        async with client.stream("POST", url, headers=headers, json=body) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode("utf-8", "replace")
                detail, fix = diagnose(base_url, model, response.status_code, text)
                return ModelCheck(**result, ok=False, detail=detail, fix=fix, status=response.status_code)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                return ModelCheck(**result, ok=False, status=200,
                                  detail=f"The base URL {base_url} answered, but not as ProxyHub (no event stream).",
                                  fix="Set PROXYHUB_PUBLIC_URL to the address clients use to reach this server.")
            lines = [line async for line in response.aiter_lines()]
    except httpx.TransportError as exc:
        reason = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
        return ModelCheck(**result, ok=False, detail=f"The base URL {base_url} does not reach ProxyHub ({reason}).",
                          fix="Set PROXYHUB_PUBLIC_URL to the address clients use to reach this server, "
                              "and check that the server is running there.")
    finished, tool, error = _read_stream(model.provider, lines)
    if error or not finished:
        return ModelCheck(**result, ok=False, status=200, tool_called=tool,
                          detail=f"The upstream broke off the answer: {error or 'the stream ended early'}.",
                          fix="Try again; if it persists, see the account's last error in admin → Credentials.")
    detail = "Streamed an answer with a tool call." if tool else "Streamed an answer (the model called no tool)."
    return ModelCheck(**result, ok=True, detail=detail, status=200, tool_called=tool)


async def acheck_key(base_url: str, raw_key: str, models: Sequence[ModelInfo]) -> list[ModelCheck]:
    """Check every model in ``models`` with ``raw_key`` through ``base_url``, a few at a time, in order."""
    gate = asyncio.Semaphore(PARALLEL)
    async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as client:
        async def one(model: ModelInfo) -> ModelCheck:
            async with gate:
                return await check_model(client, base_url, raw_key, model)

        return list(await asyncio.gather(*(one(m) for m in models)))


def check_key(base_url: str, raw_key: str, models: Sequence[ModelInfo]) -> list[ModelCheck]:
    """acheck_key() for synchronous callers (the management command)."""
    return asyncio.run(acheck_key(base_url, raw_key, models))


def key_matches(api_key: ApiKey, raw_key: str) -> bool:
    """Whether ``raw_key`` is the key ``api_key`` holds the hash of (compared in constant time)."""
    return bool(raw_key) and len(raw_key) <= 200 and keys.digests_match(api_key.digest, digest(raw_key))


def named_models(names: Sequence[str]) -> list[ModelInfo]:
    """ModelInfo for each name, from the catalog when it is there (any key, enabled or not), else guessed
    from the name, so a check can show what the gateway answers for it."""
    found = {m.name: m for m in Model.objects.filter(name__in=names)}
    out = []
    for name in names:
        m = found.get(name)
        provider = m.provider if m else ("claude" if name.startswith("claude") else "codex")
        out.append(ModelInfo(name, (m.display_name if m else "") or name, provider, m.max_output_tokens if m else 0))
    return out
