"""The server as users start it: migrate, then plain daphne, against the fake upstream."""
from __future__ import annotations

import json
import subprocess
import sys

import anthropic

from tests.servers import ROOT, daphne, server_env


def test_daphne_serves_a_streamed_message_end_to_end(tmp_path, fake):
    env = server_env(fake, f"sqlite:///{tmp_path / 'db.sqlite3'}", SECRET_KEY="test-secret-for-daphne")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    tokens = fake.issue_claude_tokens(email="team@example.com")
    token_file = tmp_path / "claude-team.json"
    token_file.write_text(json.dumps({"type": "claude", "access_token": tokens["access_token"],
                                      "refresh_token": tokens["refresh_token"], "email": "team@example.com"}))
    subprocess.run([*manage, "import_credentials", str(token_file)], env=env, check=True, capture_output=True)
    issued = subprocess.run([*manage, "issue_key", "carol", "--models", "claude-*"], env=env, check=True,
                            capture_output=True, text=True)
    key = issued.stdout.strip().splitlines()[-1]

    with daphne(env) as server:
        with anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0) as client:
            with client.messages.stream(model="claude-haiku-4-5-20251001", max_tokens=100,
                                        messages=[{"role": "user", "content": "from daphne"}]) as s:
                assert "".join(s.text_stream) == "Echo: from daphne"
    assert "POST /v1/messages" in server.output
    assert tokens["access_token"] not in server.output and key not in server.output


def test_daphne_refuses_a_websocket_upgrade_on_a_path_without_one_with_426(tmp_path, fake):
    import socket
    from urllib.parse import urlsplit

    env = server_env(fake, f"sqlite:///{tmp_path / 'db.sqlite3'}", SECRET_KEY="test-secret-for-daphne")
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"], env=env, check=True,
                   capture_output=True)
    with daphne(env) as server:
        url = urlsplit(server.url)
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(b"GET /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\nopenai-beta: responses_websockets=2026-02-06\r\n\r\n")
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 426")


def test_usage_queued_at_shutdown_is_written_before_daphne_exits(tmp_path, fake):
    import sqlite3

    import httpx

    db = tmp_path / "db.sqlite3"
    env = server_env(fake, f"sqlite:///{db}", SECRET_KEY="test-secret-for-daphne")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    issued = subprocess.run([*manage, "issue_key", "dora"], env=env, check=True, capture_output=True, text=True)
    key = issued.stdout.strip().splitlines()[-1]
    with daphne(env) as server:
        for _ in range(10):  # refused requests are recorded too, and need no upstream
            httpx.post(server.url + "/v1/messages", json={"model": "nope"}, headers={"x-api-key": key})
    # daphne was terminated at once: the writer's 0.25 s batch had no time to run on its own.
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM gateway_usagerecord").fetchone()[0] == 10
