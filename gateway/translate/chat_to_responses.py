"""Chat Completions client, Responses (Codex) upstream: PROTOCOLS.md §6.5 and §6.6.

``request()`` turns a Chat body into a Responses body; the gateway then
applies ``gateway.upstream.codex_body.prepare()``. A Droid generic-chat call::

    {"model": "gpt-5-codex", "stream": true, "stream_options": {"include_usage": true},
     "temperature": 0.2, "messages": [{"role": "system", "content": "You are Droid."},
                                      {"role": "user", "content": "List files"}]}

becomes::

    {"model": "gpt-5-codex", "stream": true,
     "input": [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Droid."}]},
               {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files"}]}]}

``response()`` turns a final Response object into a ``chat.completion`` and
``StreamTranslator`` turns Codex SSE events into Chat chunks (responses_to_chat_stream.py).
"""
from __future__ import annotations

import time
from typing import Any

from gateway.translate.responses_to_chat_stream import (
    StreamTranslator,
    chat_finish_reason,
    chat_id,
)
from gateway.translate.errors import TranslationError
from gateway.translate.mapping import Target, Usage
from gateway.translate.tool_names import chat_tool_names, restoring_tool_names

__all__ = ["request", "response", "StreamTranslator"]


def request(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """Return the Responses body for a Chat Completions request.

    Sampling knobs (temperature, top_p, stop, penalties) and output caps are
    left out: Codex rejects them. Raises TranslationError for ``n > 1`` and
    for content it cannot carry (audio, unknown roles).
    """
    if int(body.get("n") or 1) > 1:
        raise TranslationError("n > 1 is not supported", param="n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty array", param="messages")
    out: dict[str, Any] = {"model": target.model, "input": _input(messages), "stream": bool(body.get("stream"))}
    tools = [t for t in (_tool(t) for t in body.get("tools") or []) if t]
    if tools:
        out["tools"] = tools
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    if isinstance(body.get("parallel_tool_calls"), bool):
        out["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("reasoning_effort"):
        out["reasoning"] = {"effort": body["reasoning_effort"], "summary": "auto"}
    text = text_options(body)
    if text:
        out["text"] = text
    if isinstance(body.get("prompt_cache_key"), str):
        out["prompt_cache_key"] = body["prompt_cache_key"]
    return out


def response(resp: dict[str, Any], client_body: dict[str, Any], model: str) -> dict[str, Any]:
    """Return the ``chat.completion`` for a final Response object.

    >>> r = response({"id": "resp_1", "status": "completed", "output": [{"type": "message",
    ...     "content": [{"type": "output_text", "text": "Hi"}]}]}, {}, "gpt-5")
    >>> r["choices"][0]["message"]["content"], r["choices"][0]["finish_reason"]
    ('Hi', 'stop')
    """
    names = restoring_tool_names(chat_tool_names(client_body))
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in resp.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    texts.append(part.get("text") or "")
                elif part.get("type") == "refusal":
                    refusals.append(part.get("refusal") or "")
        elif kind == "reasoning":
            reasoning += [s.get("text") or "" for s in item.get("summary") or [] if s.get("text")]
        elif kind in ("function_call", "custom_tool_call"):
            calls.append(_tool_call(item, names))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": "".join(refusals) or None,
    }
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "\n\n".join(reasoning)
    status = resp.get("status")
    reason = (resp.get("incomplete_details") or {}).get("reason")
    return {
        "id": chat_id(resp.get("id")),
        "object": "chat.completion",
        "created": int(resp.get("created_at") or time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": chat_finish_reason(status, reason, bool(calls))}],
        "usage": Usage.from_responses(resp.get("usage")).to_chat(),
    }


def _tool_call(item: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    name = names.get(item.get("name") or "", item.get("name") or "")
    call_id = item.get("call_id") or item.get("id") or ""
    if item.get("type") == "custom_tool_call":
        return {"id": call_id, "type": "custom", "custom": {"name": name, "input": item.get("input") or ""}}
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": item.get("arguments") or "{}"}}


# -- request helpers ---------------------------------------------------------

def _input(messages: list[Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    custom_calls: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TranslationError(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            items += _message("developer", _text_parts(content, "input_text"))
        elif role == "user":
            items += _message("user", _user_parts(content, i))
        elif role == "assistant":
            items += _message("assistant", _text_parts(content, "output_text"))
            for call in message.get("tool_calls") or []:
                items.append(_call_item(call, custom_calls))
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            kind = "custom_tool_call_output" if call_id in custom_calls else "function_call_output"
            items.append({"type": kind, "call_id": call_id, "output": _plain_text(content)})
        else:
            raise TranslationError(f"messages[{i}].role {role!r} is not supported", param=f"messages[{i}].role")
    return items


def _message(role: str, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "message", "role": role, "content": parts}] if parts else []


def _text_parts(content: Any, part_type: str) -> list[dict[str, Any]]:
    text = _plain_text(content)
    return [{"type": part_type, "text": text}] if text else []


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict))
    return ""


def _user_parts(content: Any, i: int) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_parts(content, "input_text")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and part.get("text"):
            parts.append({"type": "input_text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image if isinstance(image, str) else image.get("url")
            detail = "auto" if isinstance(image, str) else image.get("detail") or "auto"
            parts.append({"type": "input_image", "image_url": url, "detail": detail})
        elif kind == "file":
            spec = part.get("file") or {}
            parts.append({"type": "input_file", **{k: v for k, v in spec.items() if k in ("file_data", "file_id", "filename")}})
        elif kind != "text":
            raise TranslationError(f"content part {kind!r} is not supported", param=f"messages[{i}].content")
    return parts


def _call_item(call: dict[str, Any], custom_calls: set[str]) -> dict[str, Any]:
    call_id = str(call.get("id") or "")
    if call.get("type") == "custom":
        custom_calls.add(call_id)
        spec = call.get("custom") or {}
        return {"type": "custom_tool_call", "call_id": call_id, "name": spec.get("name") or "", "input": spec.get("input") or ""}
    spec = call.get("function") or {}
    return {"type": "function_call", "call_id": call_id, "name": spec.get("name") or "",
            "arguments": spec.get("arguments") or "{}"}


def _tool(tool: Any) -> dict[str, Any] | None:
    if not isinstance(tool, dict):
        return None
    if tool.get("type") == "custom":
        spec = tool.get("custom") or {}
        return {"type": "custom", **{k: v for k, v in spec.items() if k in ("name", "description", "format")}}
    if tool.get("type", "function") != "function":
        return None
    spec = tool.get("function") or {}
    out: dict[str, Any] = {"type": "function", "name": spec.get("name") or ""}
    if spec.get("description"):
        out["description"] = spec["description"]
    out["parameters"] = spec.get("parameters") or {"type": "object", "properties": {}}
    # Responses defaults strict to true, which rejects most hand-written schemas.
    out["strict"] = bool(spec.get("strict"))
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        spec = choice.get(choice["type"]) or {}
        return {"type": choice["type"], "name": spec.get("name") or ""}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return (choice.get("allowed_tools") or {}).get("mode") or "auto"
    return "auto"


def text_options(body: dict[str, Any]) -> dict[str, Any]:
    """Chat's ``response_format`` and ``verbosity`` as a Responses ``text`` object."""
    text: dict[str, Any] = {}
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        text["format"] = {"type": "json_schema", "name": spec.get("name") or "output",
                          "schema": spec.get("schema") or {}, "strict": bool(spec.get("strict"))}
        if spec.get("description"):
            text["format"]["description"] = spec["description"]
    elif isinstance(fmt, dict) and fmt.get("type") in ("text", "json_object"):
        text["format"] = {"type": fmt["type"]}
    if body.get("verbosity"):
        text["verbosity"] = body["verbosity"]
    return text
