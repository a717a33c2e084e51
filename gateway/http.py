"""Thin raw-ASGI helpers: read a bounded body, send JSON or the head of a stream.

Errors go out through gateway.refusals, which builds them in the client's format."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from gateway import fastjson
from gateway.request_context import current as current_request_id

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLargeError(Exception):
    pass


class ClientGoneError(Exception):
    """The client disconnected before its request body arrived."""


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    client_format: str = "chat"
    request_id: str = ""  # ours or the client's x-request-id (gateway.request_context.adopt)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_scope(cls, scope: Scope) -> "Request":
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            # A repeated header (anthropic-beta may come twice) is joined, as HTTP allows.
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        return cls(scope.get("method", "GET"), scope.get("path", "/"),
                   scope.get("query_string", b"").decode("latin-1"), headers)

    def api_key(self) -> str:
        auth = self.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return (self.headers.get("x-api-key") or self.headers.get("x-goog-api-key") or "").strip()


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _encode_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    encoded = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    # Every /v1 response names its request (gateway.request_context), errors and streams too.
    request_id = current_request_id()
    if request_id:
        encoded.append((b"x-request-id", request_id.encode("latin-1")))
    return encoded


async def send_bytes(send: Send, status: int, body: bytes, content_type: str = "application/json",
                     headers: Mapping[str, str] | None = None) -> None:
    all_headers = {"content-type": content_type, "content-length": str(len(body)), **(headers or {})}
    await send({"type": "http.response.start", "status": status, "headers": _encode_headers(all_headers)})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
    await send_bytes(send, status, fastjson.dumps(obj), headers=headers)


async def start_stream(send: Send, headers: Mapping[str, str] | None = None) -> None:
    all_headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                   "x-accel-buffering": "no", **(headers or {})}
    await send({"type": "http.response.start", "status": 200, "headers": _encode_headers(all_headers)})
