"""The real client binaries the tier drives: each test module's fixture asks here for its client."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def installed(binary: Path, name: str, version: str, env: dict[str, str] | None = None) -> Path:
    """``binary`` once it answers ``--version`` with ``version``. Missing: skipped, except under
    PROXYHUB_REQUIRE_CLIENTS=1 (CI installs every client), where a missing client fails."""
    if not binary.exists():
        reason = f"{name} {version} is not installed at {binary}: run scripts/install-clients"
        if os.environ.get("PROXYHUB_REQUIRE_CLIENTS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **(env or {})})
    assert version in out.stdout, out.stdout + out.stderr
    return binary
