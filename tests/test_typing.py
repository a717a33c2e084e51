"""The pure layer type-checks under mypy --strict (STYLE.md §4)."""
from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]
PURE = ["gateway/formats", "gateway/translate", "gateway/upstream/claude_body.py", "gateway/upstream/codex_body.py",
        "gateway/upstream/ratelimits.py", "credentials/window_state.py"]


def test_pure_modules_pass_mypy_strict():
    out, err, status = api.run(["--strict", "--follow-imports=silent", "--ignore-missing-imports",
                                "--no-incremental", *[str(ROOT / p) for p in PURE]])
    assert status == 0, out + err
