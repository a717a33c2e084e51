"""The pure layer type-checks under mypy --strict (STYLE.md §4)."""
from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]
PURE = ["gateway/formats", "gateway/translate", "gateway/upstream/claude_body.py", "gateway/upstream/codex_body.py",
        "gateway/upstream/ratelimits.py", "credentials/window_state.py"]
# The /v1 path's own modules: Django comes in untyped (no stubs), the rest is checked as strictly.
V1_PATH = ["gateway/upstream/base.py", "gateway/upstream/claude.py", "gateway/upstream/codex.py",
           "gateway/upstream/registry.py", "gateway/upstream/client.py", "gateway/refusals.py", "gateway/admission.py",
           "gateway/http.py", "gateway/relay.py", "gateway/app.py", "gateway/websocket.py"]


def test_pure_modules_pass_mypy_strict():
    out, err, status = api.run(["--strict", "--follow-imports=silent", "--ignore-missing-imports",
                                "--no-incremental", *[str(ROOT / p) for p in PURE + V1_PATH]])
    assert status == 0, out + err
