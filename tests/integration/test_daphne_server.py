"""The server as users start it: migrate, then plain daphne, against the fake upstream."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DAPHNE = Path(sys.executable).with_name("daphne")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_daphne_serves_a_streamed_message_end_to_end(tmp_path, fake):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "SECRET_KEY": "test-secret-for-daphne", "PROXYHUB_CLAUDE_BASE_URL": fake.claude_base_url,
           "PROXYHUB_CLAUDE_TOKEN_URL": fake.claude_token_url, "PROXYHUB_CODEX_BASE_URL": fake.codex_base_url,
           "PROXYHUB_CODEX_TOKEN_URL": fake.codex_token_url, "DJANGO_SETTINGS_MODULE": "proxyhub.settings"}
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

    port = _free_port()
    server = subprocess.Popen([str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "proxyhub.asgi:application"],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "daphne did not start"
                time.sleep(0.1)
        with anthropic.Anthropic(base_url=base, api_key=key, max_retries=0) as client:
            with client.messages.stream(model="claude-haiku-4-5-20251001", max_tokens=100,
                                        messages=[{"role": "user", "content": "from daphne"}]) as s:
                assert "".join(s.text_stream) == "Echo: from daphne"
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    assert tokens["access_token"] not in output and key not in output
