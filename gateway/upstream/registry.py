"""Provider name -> upstream module instance."""
from __future__ import annotations

from gateway.upstream.claude import Claude
from gateway.upstream.codex import Codex

UPSTREAMS = {"claude": Claude(), "codex": Codex()}
