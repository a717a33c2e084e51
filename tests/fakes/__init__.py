"""Fake upstreams for integration tests: Claude API, Codex backend, both token endpoints.

They speak the real wire protocols (SSE included), refuse what the real
upstreams refuse, and can be scripted to fail.  See server.FakeUpstreams.
"""

from __future__ import annotations

from .server import FakeUpstreams

__all__ = ["FakeUpstreams"]
