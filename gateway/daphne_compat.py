"""Teach daphne the ASGI "websocket.http.response" denial extension.

Daphne answers every refused WebSocket handshake with 403. A WebSocket on a
path that has none must get a plain 426 at once (a client such as Codex CLI
then falls back to HTTP streaming, PROTOCOLS.md §7.4), so a refusal
carrying a status is turned into that status here (autobahn sends the
status line only, no body). Installed by proxyhub.asgi; a no-op
under other servers, which support the extension themselves.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

INSTALLED = False


def install() -> None:
    global INSTALLED
    try:
        from autobahn.twisted.websocket import ConnectionDeny
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return
    if INSTALLED:
        return
    original = WebSocketProtocol.handle_reply

    def handle_reply(self: Any, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "websocket.http.response.start" and self.state == self.STATE_CONNECTING:
            status = message["status"]
            self.handshake_deferred.errback(ConnectionDeny(code=status, reason=_reason(status)))
            del self.handshake_deferred
            self.server.protocol_disconnected(self)
            return
        if kind == "websocket.http.response.body":
            return  # autobahn sends the status line only
        if kind == "websocket.close" and self.state == self.STATE_OPEN and message.get("code") in (1001, 1012):
            # autobahn's sendClose() refuses all but 1000 and 3000-4999; the shutdown's 1012 is a server's to send.
            self.sendCloseFrame(code=message["code"], isReply=False)
            return
        original(self, message)

    WebSocketProtocol.handle_reply = handle_reply
    INSTALLED = True


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Refused"
