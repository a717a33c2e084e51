"""deploy/entrypoint.sh, run for real without a container: it waits for the database, migrates once
however many replicas start together, serves with PROXYHUB_WORKERS workers and stops on SIGTERM."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.servers import ROOT, free_port, server_env, session_database_url
from tests.worker_processes import pids_holding_connections

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


class Replica:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.output = ""  # what it printed, once stopped

    def wait_serving(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("the entrypoint did not serve:\n" + self.output) from None
                time.sleep(0.2)

    def stop(self) -> int:
        """SIGTERM, as a container runtime or systemd sends it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out = self.process.communicate(timeout=45)[0]
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            out = self.process.communicate()[0]
        self.output = out.decode(errors="replace")
        return self.process.returncode


@contextmanager
def replica(env: dict[str, str]) -> Iterator[Replica]:
    """deploy/entrypoint.sh on a free port, in its own process group; stopped afterwards."""
    port = free_port()
    process = subprocess.Popen([str(ENTRYPOINT)], env={**env, "PROXYHUB_PORT": str(port)}, cwd="/",
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    started = Replica(process, port)
    try:
        yield started
    finally:
        started.stop()
        _assert_group_gone(process.pid)


def _assert_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            raise AssertionError("worker processes outlived the server")
        time.sleep(0.1)


def _env(fake: object, database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = server_env(fake, database_url, **{
        "PROXYHUB_BACKGROUND_REFRESH": "false", "PROXYHUB_JOURNAL_DIR": str(tmp_path / "journal"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "PROXYHUB_DB_WAIT_SECONDS": "30", **extra})
    env.pop("PROXYHUB_METRICS_DIR_PID", None)  # this test process's; the replica's workers share the dir above
    return env


@contextmanager
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """An empty database of the suite's kind (nothing migrated), as a DATABASE_URL."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    import psycopg

    name = f"proxyhub_entrypoint_{uuid.uuid4().hex[:10]}"
    params = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"],
              "password": db.get("PASSWORD") or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        yield f"postgres://{auth}@{params['host']}:{params['port']}/{name}"
    finally:
        with psycopg.connect(**params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db(transaction=True)
def test_entrypoint_serves_health_and_v1_from_two_workers_and_stops_on_sigterm(
        tmp_path, catalog_seeded, fake, api_key_factory, credential_factory):
    credential_factory()
    _, key = api_key_factory()
    env = _env(fake, session_database_url(), tmp_path, PROXYHUB_WORKERS="2")
    body = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "deployed"}]}
    with replica(env) as server:
        server.wait_serving()
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
        r = httpx.post(server.url + "/v1/messages", json=body, headers={"x-api-key": key}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "message" and r.json()["content"][0]["text"]
        with ExitStack() as stack:
            clients = [stack.enter_context(httpx.Client(base_url=server.url)) for _ in range(16)]
            for client in clients:
                client.get("/healthz")
            held = pids_holding_connections(server.process.pid, server.port)
        assert len(held) >= 1 and server.process.pid not in held  # served by workers below the supervisor
        assert server.stop() == 0
    assert "No migrations to apply." in server.output  # the suite's database was migrated already


def test_two_replicas_starting_at_once_on_an_empty_database_migrate_it_once(tmp_path, fake):
    with fresh_database(tmp_path) as url, ExitStack() as stack:
        env = _env(fake, url, tmp_path, PROXYHUB_WORKERS="1")
        replicas = [stack.enter_context(replica(env)) for _ in range(2)]
        for r in replicas:
            r.wait_serving()
        for r in replicas:
            assert httpx.get(r.url + "/healthz").json() == {"status": "ok"}
            v1 = httpx.post(r.url + "/v1/messages", json={"model": "claude-sonnet-4-6"})
            assert v1.status_code == 401  # migrated: the key lookup found the table and no key
        codes = [r.stop() for r in replicas]
        outputs = [r.output for r in replicas]
    assert codes == [0, 0], outputs
    applied = [out for out in outputs if "Applying " in out]
    assert len(applied) == 1, outputs  # the other waited on the lock, then found nothing to apply
    assert sum("No migrations to apply." in out for out in outputs) == 1
    assert sum(out.count("password: ") for out in outputs) == 1  # one first admin


def test_entrypoint_gives_up_on_a_database_that_never_answers(tmp_path, fake):
    url = f"postgres://nobody@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    env = _env(fake, url, tmp_path, PROXYHUB_DB_WAIT_SECONDS="2")
    started = time.monotonic()
    result = subprocess.run([str(ENTRYPOINT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert time.monotonic() - started >= 2  # it waited before giving up
    assert "Waiting for the database" in result.stdout
    assert "did not answer within 2 s" in result.stderr


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
def test_the_balancer_config_is_valid_nginx(tmp_path):
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxyhub1:8317" in site and "proxyhub2:8317" in site
    (tmp_path / "site.conf").write_text(site.replace("proxyhub1:8317", "127.0.0.1:1").replace("proxyhub2:8317",
                                                                                             "127.0.0.1:2"))
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
                                         f"events {{}}\nhttp {{ include {tmp_path}/site.conf; }}\n")
    result = subprocess.run(["nginx", "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies_and_runs_the_entrypoint(tmp_path):
    unit = (ROOT / "deploy" / "proxyhub.service").read_text()
    assert "ExecStart=/opt/proxyhub/deploy/entrypoint.sh" in unit and "EnvironmentFile=" in unit
    (tmp_path / "proxyhub.service").write_text(unit.replace("/opt/proxyhub", str(ROOT)))
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "proxyhub.service")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
