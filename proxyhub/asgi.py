"""ASGI entry point: /v1 goes to the gateway's own ASGI app, the rest to Django.

Django's ASGI app is built before importing the gateway, which touches models.
"""
from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proxyhub.settings")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

# The admin's CSS and JS come from the app directories: no collectstatic or CDN needed.
django_application = ASGIStaticFilesHandler(get_asgi_application())

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from gateway.app import gateway_application, websocket_refusal  # noqa: E402
from gateway.websocket import responses_websocket  # noqa: E402
from gateway import daphne_compat  # noqa: E402
from proxyhub import drain  # noqa: E402
from proxyhub.background import start_once  # noqa: E402

daphne_compat.install()

router = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                re_path(r"^(v1|backend-api)/", gateway_application),
                # Bare OpenAI/Anthropic paths: answered with a JSON hint to add /v1.
                re_path(r"^(messages|chat/completions|responses|models|completions)(/|$)", gateway_application),
                re_path(r"", django_application),
            ]
        ),
        "websocket": URLRouter(
            [
                # The Responses API over WebSocket (Codex CLI); /v1/v1/ as for HTTP.
                re_path(r"^(v1/)+responses/?$", responses_websocket),
                re_path(r"^backend-api/codex/responses/?$", responses_websocket),
                re_path(r"", websocket_refusal),  # 426 elsewhere: the client falls back to HTTP
            ]
        ),
    }
)


async def application(scope: dict, receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "lifespan":  # uvicorn: startup, and the flush at shutdown (proxyhub/drain.py)
        await drain.lifespan(receive, send, start_once)
        return
    start_once()  # before the request's id is set, so the background tasks carry none
    if kind == "http":
        await drain.serve(router, scope, receive, send)  # counted in flight, refused while daphne drains
    else:
        await router(scope, receive, send)
