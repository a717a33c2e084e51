"""Error bodies in each client's own format, for HTTP responses and stream events.

Client formats: ``anthropic`` (Messages), ``chat`` (Chat Completions) and
``responses`` (Responses). Anthropic clients get
``{"type":"error","error":{"type":...,"message":...}}``; OpenAI clients get
``{"error":{"message":...,"type":...,"param":null,"code":...}}``.
"""
from __future__ import annotations

from typing import Any

ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "timeout",
}


def anthropic_type(status: int) -> str:
    return ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def openai_type(status: int) -> str:
    return OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")


def error_body(client_format: str, status: int, message: str, *, code: str | None = None,
               error_type: str | None = None, param: str | None = None) -> dict[str, Any]:
    """The JSON body of an error response for ``client_format``."""
    if client_format == "anthropic":
        return {"type": "error", "error": {"type": error_type or anthropic_type(status), "message": message}}
    return {
        "error": {
            "message": message,
            "type": error_type or openai_type(status),
            "param": param,
            "code": code,
        }
    }


def upstream_error_message(body: Any, fallback: str) -> str:
    """Pull a human message out of an upstream error body of any known shape."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return str(body.get("error_description") or err)
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return fallback
