"""Provider name -> upstream module instance."""
from __future__ import annotations

from gateway.upstream.base import Upstream
from gateway.upstream.claude import Claude
from gateway.upstream.codex import Codex

UPSTREAMS: dict[str, Upstream] = {"claude": Claude(), "codex": Codex()}
