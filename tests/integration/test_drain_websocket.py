"""SIGTERM drains WebSocket connections too (Codex CLI, PROTOCOLS.md §3.7; proxyhub/drain.py).

Through deploy/serve, the production command, under uvicorn (one worker and two) and daphne, with
a real WebSocket client (aiohttp) and the fake Codex upstream answering slowly: the response in
progress at SIGTERM finishes and is recorded as ok, a request sent behind it gets the 503 error
frame, and then the connection closes with 1012 (service restart); an idle connection closes with
1012 at once; new connections and upgrades are refused; the process exits 0.
"""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import wait_for_usage
from tests.integration.test_drain import refused
from tests.integration.test_websocket import GPT, connected, create, text_of, user
from tests.servers import deploy_serve, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


async def frames_until_close(ws: aiohttp.ClientWebSocketResponse, timeout: float = 60) -> list[dict[str, Any]]:
    """Every text frame (keep-alives left out) up to the server's close."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws.receive(timeout=max(deadline - time.monotonic(), 0.1))
        if msg.type in CLOSED:
            return frames
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, frames)
        frame = json.loads(msg.data)
        if frame["type"] != "keepalive":
            frames.append(frame)


def kept_alive(url: str) -> socket.socket:
    """A connection that has had one answer and stays open (HTTP/1.1 keep-alive)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while not data.endswith(b"}"):
        data += sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 200"), data
    return sock


def upgrade_on(sock: socket.socket, key: str) -> bytes:
    """A WebSocket upgrade on an open connection: the answer's first bytes ('' once the server closed it)."""
    sock.sendall(f"GET /v1/responses HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 f"Authorization: Bearer {key}\r\n\r\n".encode())
    try:
        return sock.recv(4096)
    except ConnectionResetError:
        return b""


async def wait_refused(url: str) -> None:
    deadline = time.monotonic() + 5
    while not await asyncio.to_thread(refused, url):
        assert time.monotonic() < deadline, "new connections were still accepted after SIGTERM"
        await asyncio.sleep(0.05)


@pytest.fixture
def codex_key(api_key_factory, credential_factory) -> str:
    credential_factory("codex")
    return api_key_factory(models=["gpt-*"])[1]


@pytest.mark.parametrize("server, workers", [("uvicorn", 1), ("uvicorn", 2), ("daphne", 1)])
def test_sigterm_finishes_the_websocket_response_in_flight_then_closes_with_1012(
        server, workers, catalog_seeded, fake, codex_key):
    fake.add_fault("codex", "slow", times=1, delay=0.3)  # every event after the first waits 0.3 s
    env = server_env(fake, session_database_url(), PROXYHUB_BACKGROUND_REFRESH="false",
                     PROXYHUB_DRAIN_SECONDS="30")

    async def scenario(served: Any) -> dict[str, Any]:
        busy_session, busy = await connected(served.url, codex_key)
        idle_session, idle = await connected(served.url, codex_key)
        keep = kept_alive(served.url)
        async with busy_session, idle_session:
            await busy.ws.send_str(json.dumps(create(GPT, [user("a long story")])))
            first = json.loads((await busy.ws.receive(timeout=20)).data)
            assert first["type"] == "response.created", first
            # Sent behind the response in progress (Codex waits, but nothing stops a client): read in the drain.
            await busy.ws.send_str(json.dumps(create(GPT, [user("one more")])))
            served.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            idle_frames = await frames_until_close(idle.ws, timeout=10)
            idle_closed_after = time.monotonic() - signalled
            await wait_refused(served.url)
            late_upgrade = await asyncio.to_thread(upgrade_on, keep, codex_key)
            keep.close()
            busy_frames = await frames_until_close(busy.ws)
            return {"first": first, "busy": [first, *busy_frames], "busy_code": busy.ws.close_code,
                    "idle": idle_frames, "idle_code": idle.ws.close_code, "idle_after": idle_closed_after,
                    "late_upgrade": late_upgrade, "took": time.monotonic() - signalled}

    with deploy_serve(env, server, workers) as served:
        result = asyncio.run(scenario(served))
        exit_code = served.process.wait(30)
        output = served.output
    assert exit_code == 0, output
    # The idle connection is closed at once, long before the response (about 3 s of slow events) ends.
    assert (result["idle"], result["idle_code"]) == ([], 1012), output
    assert result["idle_after"] < 2.0 < result["took"], result
    busy = result["busy"]
    done = next(i for i, f in enumerate(busy) if f["type"] == "response.completed")
    assert text_of(busy[:done]) == "Echo: a long story"
    [refusal] = busy[done + 1:]
    assert (refusal["type"], refusal["status"], refusal["headers"]["retry-after"]) == ("error", 503, "1")
    assert "shutting down" in refusal["error"]["message"]
    assert result["busy_code"] == 1012
    # An upgrade on a kept-alive connection: 503 (daphne sends no body), or the connection already closed
    # (with two uvicorn workers, it may be on the one that had only the idle WebSocket and left at once).
    late = result["late_upgrade"]
    if workers == 1:
        assert late.startswith(b"HTTP/1.1 503"), late
        assert b"shutting down" in late or server == "daphne", late
    else:
        assert late == b"" or late.startswith(b"HTTP/1.1 503"), late
    [row] = wait_for_usage(1)
    assert (row.endpoint, row.outcome, row.status_code) == ("responses_ws", "ok", 200)
    assert row.output_tokens > 0
    assert len(fake.requests("codex")) == 1  # the request behind it never went upstream


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_a_websocket_response_longer_than_the_drain_time_is_cut_recorded_and_closed(
        server, catalog_seeded, fake, codex_key):
    fake.add_fault("codex", "slow", times=1, delay=2.0)
    env = server_env(fake, session_database_url(), PROXYHUB_BACKGROUND_REFRESH="false", PROXYHUB_DRAIN_SECONDS="1")

    async def scenario(served: Any) -> tuple[list[dict[str, Any]], int | None]:
        session, client = await connected(served.url, codex_key)
        async with session:
            await client.ws.send_str(json.dumps(create(GPT, [user("a very long story")])))
            first = json.loads((await client.ws.receive(timeout=20)).data)
            served.process.send_signal(signal.SIGTERM)
            return [first, *await frames_until_close(client.ws, timeout=15)], client.ws.close_code

    with deploy_serve(env, server) as served:
        started = time.monotonic()
        frames, code = asyncio.run(scenario(served))
        exit_code = served.process.wait(30)
        took = time.monotonic() - started
        output = served.output
    assert exit_code == 0 and took < 10, output
    assert "response.completed" not in [f["type"] for f in frames] and code == 1012
    [row] = wait_for_usage(1)
    assert (row.endpoint, row.outcome) == ("responses_ws", "client_cancelled")
