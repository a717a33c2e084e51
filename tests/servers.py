"""Starting real daphne processes for tests, against the test database and the fakes."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parents[1]
DAPHNE = Path(sys.executable).with_name("daphne")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(fake: object, database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": os.environ.get("SECRET_KEY", "") or _secret(),
            "PROXYHUB_CLAUDE_BASE_URL": fake.claude_base_url, "PROXYHUB_CLAUDE_TOKEN_URL": fake.claude_token_url,
            "PROXYHUB_CLAUDE_TOKEN_FALLBACK_URL": "",
            "PROXYHUB_CODEX_BASE_URL": fake.codex_base_url, "PROXYHUB_CODEX_TOKEN_URL": fake.codex_token_url,
            "PROXYHUB_CLAUDE_USAGE_URL": fake.claude_usage_url, "PROXYHUB_CODEX_USAGE_URL": fake.codex_usage_url,
            "PROXYHUB_WINDOW_POLL_SECONDS": "0",  # off unless a test asks: polls would move the fakes' counters
            "DJANGO_SETTINGS_MODULE": "proxyhub.settings", **extra}


def _secret() -> str:
    from django.conf import settings

    return settings.SECRET_KEY


def session_database_url() -> str:
    """A DATABASE_URL for the database this test session uses (the pytest-django test database)."""
    from django.db import connection

    d = connection.settings_dict
    if d["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{d['NAME']}"
    auth = d["USER"] + (f":{d['PASSWORD']}" if d.get("PASSWORD") else "")
    return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


class Server:
    def __init__(self, url: str, process: subprocess.Popen[bytes] | None = None) -> None:
        self.url = url
        self.output = ""  # everything the process printed, once it stopped
        self.process = process

    def kill(self) -> None:
        """SIGKILL the server at once: no shutdown handler, no atexit, no flush."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@contextmanager
def daphne(env: dict[str, str]) -> Iterator[Server]:
    """A daphne process serving proxyhub.asgi; stopped (and its output kept) afterwards."""
    port = free_port()
    process = subprocess.Popen([str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "proxyhub.asgi:application"],
                               env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("daphne did not start:\n" + process.communicate()[0].decode()) from None
                time.sleep(0.1)
        server = Server(base, process)
        yield server
    finally:
        process.terminate()
        try:
            out = process.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            out = process.communicate()[0]
    server.output = out.decode(errors="replace")


class Served:
    """A server process started by deploy/serve, the production command; output is read once it stopped."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.process, self.log = url, process, log

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def deploy_serve(env: dict[str, str], server: str = "uvicorn", workers: int = 1) -> Iterator[Served]:
    """deploy/serve with PROXYHUB_SERVER=server; killed afterwards if the test did not stop it."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="proxyhub-serve-")) / "output.log"
    env = {**env, "PROXYHUB_SERVER": server, "PROXYHUB_WORKERS": str(workers), "PROXYHUB_PORT": str(port),
           "PROXYHUB_HOST": "127.0.0.1"}
    with log.open("wb") as out:
        process = subprocess.Popen([str(ROOT / "deploy" / "serve")], env=env, cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(served.url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server} did not start:\n" + served.output) from None
                time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        shutil.rmtree(log.parent, ignore_errors=True)


class TcpForwarder:
    """A loopback TCP forwarder to ``target`` that a test can cut (refusing and dropping every connection,
    as an unreachable database does) and restore on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> TcpForwarder:
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: close() alone would not
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()  # each socket is closed by the thread reading it


@contextmanager
def two_daphnes(env: dict[str, str]) -> Iterator[tuple[Server, Server]]:
    """Two daphne processes on the same env, started side by side (half the wait of one after the other)."""
    started = [daphne(env), daphne(env)]
    with ExitStack() as stack:
        with ThreadPoolExecutor(2) as executor:
            entering = [executor.submit(cm.__enter__) for cm in started]
        for cm, future in zip(started, entering):
            if future.exception() is None:
                stack.push(cm.__exit__)
        a, b = (future.result() for future in entering)
        yield a, b
