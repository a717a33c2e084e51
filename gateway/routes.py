"""Which translator serves each (client format, upstream provider) pair.

Same-format pairs pass the body through (only the model and the upstream's
own rules change); the others use the pure translators in translate/, each
module named for the direction it translates: ``<client>_to_<upstream>.py``
holds ``request()`` and ``response()`` and takes its stream translator from
``<upstream>_to_<client>_stream.py`` (Responses to Codex only restores tool
names shortened on the way up).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Protocol

from gateway.formats.sse import Event
from gateway.translate.mapping import Target


class StreamTranslator(Protocol):
    done: bool

    def feed(self, event: Event) -> list[bytes]: ...
    def finish(self) -> list[bytes]: ...
    def fail(self, error_type: str, message: str) -> list[bytes]: ...


@dataclass(frozen=True)
class Route:
    request: Callable[[dict[str, Any], Target], dict[str, Any]]
    # None: the upstream's body or stream goes back unchanged; a stream factory
    # may also return None for a request that needs no translation.
    response: Callable[[dict[str, Any], dict[str, Any], str], dict[str, Any]] | None
    stream: Callable[[dict[str, Any], str], StreamTranslator | None] | None


def _same_format(body: dict[str, Any], target: Target) -> dict[str, Any]:
    return {**body, "model": target.model}


PASSTHROUGH = Route(_same_format, None, None)

_TRANSLATORS = {
    ("responses", "codex"): "gateway.translate.responses_to_responses",
    ("chat", "claude"): "gateway.translate.chat_to_anthropic",
    ("responses", "claude"): "gateway.translate.responses_to_anthropic",
    ("anthropic", "codex"): "gateway.translate.anthropic_to_responses",
    ("chat", "codex"): "gateway.translate.chat_to_responses",
}
_PASSTHROUGH = {("anthropic", "claude")}


@lru_cache(maxsize=None)
def route_for(client_format: str, provider: str) -> Route:
    if (client_format, provider) in _PASSTHROUGH:
        return PASSTHROUGH
    module = importlib.import_module(_TRANSLATORS[(client_format, provider)])
    return Route(module.request, module.response, getattr(module, "stream", None) or module.StreamTranslator)
