"""SIGTERM drains: the process stops accepting, lets the streams in flight finish, writes their usage, exits 0.

Run through deploy/serve, the production command, under both servers: uvicorn
(its own graceful shutdown plus the lifespan flush; with two workers too, whose
supervisor holds the listening socket until they exit) and daphne (which has
no lifespan: proxyhub/drain.py takes over its SIGTERM).
"""
from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from tests.conftest import wait_for_usage
from tests.servers import deploy_serve, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 200, "stream": True,
        "messages": [{"role": "user", "content": "Tell me a slow story"}]}


class Stream(threading.Thread):
    """One streaming request, read to its end in a thread."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.first_byte = threading.Event()
        self.status = 0
        self.body = ""
        self.request_id = ""
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with httpx.stream("POST", self.url + "/v1/messages", json=BODY, headers={"x-api-key": self.key},
                              timeout=60) as r:
                self.status, self.request_id = r.status_code, r.headers["x-request-id"]
                for chunk in r.iter_text():
                    self.body += chunk
                    self.first_byte.set()
        except httpx.TransportError as exc:  # cut off: the test says whether that was expected
            self.error = exc


def refused(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False
    return False


@pytest.mark.parametrize("server, workers", [("uvicorn", 1), ("uvicorn", 2), ("daphne", 1)])
def test_sigterm_lets_a_stream_in_flight_finish_refuses_new_connections_and_exits_0(
        server, workers, catalog_seeded, fake, api_key_factory, credential_factory):
    credential_factory()
    _, key = api_key_factory()
    fake.add_fault("claude", "slow", times=1, delay=0.3)  # every event after the first waits 0.3 s
    env = server_env(fake, session_database_url(), PROXYHUB_BACKGROUND_REFRESH="false",
                     PROXYHUB_DRAIN_SECONDS="30")
    with deploy_serve(env, server, workers) as served:
        stream = Stream(served.url, key)
        stream.start()
        assert stream.first_byte.wait(20), "the stream did not start"
        served.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not refused(served.url):
            assert time.monotonic() < deadline, "new connections were still accepted after SIGTERM"
            time.sleep(0.05)
        assert stream.is_alive(), "the stream ended before new connections were refused: the test proves nothing"
        stream.join(60)
        exit_code = served.process.wait(30)
        output = served.output
    assert stream.status == 200 and stream.error is None
    assert "event: message_stop" in stream.body[-200:]
    assert exit_code == 0, output
    [row] = wait_for_usage(1)
    assert (row.request_id, row.outcome, row.status_code) == (stream.request_id, "ok", 200)
    assert row.output_tokens > 0


def test_a_stream_longer_than_the_drain_time_is_cut_and_still_recorded(catalog_seeded, fake, api_key_factory,
                                                                       credential_factory):
    credential_factory()
    _, key = api_key_factory()
    fake.add_fault("claude", "slow", times=1, delay=2.0)
    env = server_env(fake, session_database_url(), PROXYHUB_BACKGROUND_REFRESH="false", PROXYHUB_DRAIN_SECONDS="1")
    with deploy_serve(env, "daphne") as served:
        stream = Stream(served.url, key)
        stream.start()
        assert stream.first_byte.wait(20)
        started = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        exit_code = served.process.wait(30)
        took = time.monotonic() - started
        stream.join(10)
    assert exit_code == 0 and took < 10
    assert "message_stop" not in stream.body and stream.error is not None
    [row] = wait_for_usage(1)
    assert (row.request_id, row.outcome) == (stream.request_id, "client_cancelled")


def test_daphne_answers_a_request_on_a_kept_alive_connection_during_the_drain_with_503(
        catalog_seeded, fake, api_key_factory, credential_factory):
    credential_factory()
    _, key = api_key_factory()
    fake.add_fault("claude", "slow", times=1, delay=0.3)
    env = server_env(fake, session_database_url(), PROXYHUB_BACKGROUND_REFRESH="false")
    with deploy_serve(env, "daphne") as served, httpx.Client(base_url=served.url, timeout=10) as kept:
        assert kept.get("/healthz").status_code == 200  # the connection stays open
        stream = Stream(served.url, key)
        stream.start()
        assert stream.first_byte.wait(20)
        served.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not refused(served.url):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        late = kept.post("/v1/messages", json=BODY, headers={"x-api-key": key, "x-request-id": "late-1"})
        stream.join(60)
        assert served.process.wait(30) == 0
    assert late.status_code == 503 and late.headers["retry-after"] == "1"
    assert late.headers["x-request-id"] == "late-1" and "shutting down" in late.json()["error"]["message"]
    assert stream.error is None and "event: message_stop" in stream.body[-200:]
