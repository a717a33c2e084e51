"""README command one: scripts/start sets up, creates the first admin and serves (daphne or uvicorn)."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.servers import ROOT, free_port


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_start_script_serves_on_the_given_port_and_prints_the_admin_password(tmp_path, server):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "SECRET_KEY": "start-test",
           "PROXYHUB_PORT": str(port), "PROXYHUB_SERVER": server, "PROXYHUB_BACKGROUND_REFRESH": "false"}
    process = subprocess.Popen([str(ROOT / "scripts" / "start")], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        r = httpx.post(f"http://127.0.0.1:{port}/v1/messages", json={"model": "claude-sonnet-4-6"})
        assert r.status_code == 401 and r.json()["type"] == "error"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert "username: admin" in output and "password: " in output
