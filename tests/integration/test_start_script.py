"""README command one: scripts/start sets up, creates the first admin and serves (daphne, uvicorn, N workers)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, ExitStack
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, free_port
from tests.worker_processes import pids_holding_connections


class Started:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output = ""  # what it printed, once stopped
        self.returncode: int | None = None


@contextmanager
def start_script(tmp_path: Path, **extra: str) -> Iterator[Started]:
    """scripts/start on a fresh SQLite database and a free port; SIGTERM to its process group afterwards."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "SECRET_KEY": "start-test",
           "PROXYHUB_PORT": str(port), "PROXYHUB_BACKGROUND_REFRESH": "false",
           "PROXYHUB_JOURNAL_DIR": str(tmp_path / "journal"), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           **extra}
    env.pop("PROXYHUB_METRICS_DIR_PID", None)  # this test process's; the server's workers share the one above
    process = subprocess.Popen([str(ROOT / "scripts" / "start")], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    started = Started(process, port)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(started.url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield started
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            started.output = process.communicate(timeout=30)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            started.output = process.communicate()[0].decode()
        started.returncode = process.returncode


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_start_script_serves_on_the_given_port_and_prints_the_admin_password(tmp_path, server):
    with start_script(tmp_path, PROXYHUB_SERVER=server) as started:
        assert httpx.get(started.url + "/healthz").json() == {"status": "ok"}
        r = httpx.post(started.url + "/v1/messages", json={"model": "claude-sonnet-4-6"})
        assert r.status_code == 401 and r.json()["type"] == "error"
    assert "username: admin" in started.output and "password: " in started.output


def test_start_script_with_two_workers_serves_from_two_worker_processes(tmp_path):
    with start_script(tmp_path, PROXYHUB_WORKERS="2") as started:
        r = httpx.post(started.url + "/v1/messages", json={"model": "claude-sonnet-4-6"})
        assert r.status_code == 401 and r.json()["type"] == "error"
        serving: set[int] = set()
        deadline = time.monotonic() + 60  # a worker still importing Django accepts nothing yet
        while time.monotonic() < deadline:  # the kernel hands each connection to whichever worker accepts first
            with ExitStack() as stack:
                clients = [stack.enter_context(httpx.Client(base_url=started.url)) for _ in range(24)]
                for client in clients:  # each client keeps its connection open (keep-alive)
                    assert client.get("/healthz").json() == {"status": "ok"}
                held = pids_holding_connections(started.process.pid, started.port)
            assert sum(held.values()) == len(clients)
            serving |= set(held)
            if len(serving) >= 2:
                break
            time.sleep(0.5)
        assert started.process.pid not in serving  # the supervisor only supervises
        assert len(serving) == 2, f"connections were served by {sorted(serving)}"
    assert started.returncode == 0
    assert started.output.count("password: ") == 1  # the admin is created once, before the workers start


def test_daphne_refuses_several_workers_with_a_clear_message(tmp_path):
    env = {**os.environ, "PROXYHUB_SERVER": "daphne", "PROXYHUB_WORKERS": "2"}
    result = subprocess.run([str(ROOT / "deploy" / "serve")], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "PROXYHUB_SERVER=uvicorn" in result.stderr
