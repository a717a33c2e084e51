"""Shared test world: fake upstreams, the gateway served over real HTTP, factories.

The gateway runs in-process under uvicorn in a background thread (so tests can
reset its caches); tests talk to it through real sockets with the official SDKs.
A separate smoke test starts it with daphne, as the README does.
"""
from __future__ import annotations

import importlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from datetime import timedelta
from typing import Any

import pytest
from django.test.utils import override_settings
from django.utils import timezone

from tests.fakes import FakeUpstreams

SEED = importlib.import_module("credentials.migrations.0002_seed_models").MODELS


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Give SQLite a file test database: the in-thread server needs a second connection to it."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        # A fresh directory per run: a stale -wal file beside a recreated database corrupts it.
        db.setdefault("TEST", {})["NAME"] = str(Path(tempfile.mkdtemp(prefix="proxyhub-test-")) / "test.sqlite3")


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstreams]:
    upstreams = FakeUpstreams()
    upstreams.start()
    urls = override_settings(
        PROXYHUB_CLAUDE_BASE_URL=upstreams.claude_base_url,
        PROXYHUB_CLAUDE_TOKEN_URL=upstreams.claude_token_url,
        PROXYHUB_CLAUDE_TOKEN_FALLBACK_URL="",  # never the real host from a test
        PROXYHUB_CODEX_BASE_URL=upstreams.codex_base_url,
        PROXYHUB_CODEX_TOKEN_URL=upstreams.codex_token_url,
        PROXYHUB_KEEPALIVE_SECONDS=1.0,
        PROXYHUB_BACKGROUND_REFRESH=False,  # tests drive refreshes themselves
        PROXYHUB_CLAUDE_USAGE_URL=upstreams.claude_usage_url,
        PROXYHUB_CODEX_USAGE_URL=upstreams.codex_usage_url,
        PROXYHUB_WINDOW_POLL_SECONDS=0,  # tests that poll start servers with a poll period
        PROXYHUB_ALERT_CHECK_SECONDS=0,  # alert tests run their checks themselves
    )
    urls.enable()
    yield upstreams
    urls.disable()
    upstreams.stop()


class _ServerThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        import uvicorn

        from proxyhub.asgi import application

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.sock = sock
        # proxy_headers off: like deploy/serve with no PROXYHUB_TRUSTED_PROXIES, uvicorn must not take a
        # test's X-Forwarded-For as the client (by default it trusts loopback, where every test client is).
        config = uvicorn.Config(application, log_level="warning", lifespan="off", timeout_graceful_shutdown=2,
                                proxy_headers=False)
        self.server = uvicorn.Server(config)

    def run(self) -> None:
        import asyncio

        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from asgiref.sync import sync_to_async
        from django.db import connections

        from credentials.refresh import aclose_client
        from gateway.upstream.client import close_sessions

        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            await close_sessions()
            await aclose_client()
            # The database connections live in asgiref's worker thread: close them
            # there, or Postgres refuses to drop the test database.
            await sync_to_async(connections.close_all)()


@pytest.fixture(scope="session")
def gateway_url(fake: FakeUpstreams, django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    thread = _ServerThread()
    thread.start()
    deadline = time.monotonic() + 10
    while not thread.server.started:
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{thread.port}"
    thread.server.should_exit = True
    thread.join(5)


@pytest.fixture
def catalog_seeded(transactional_db: None, fake: FakeUpstreams) -> None:
    """The seeded model catalog (transactional tests flush the migration's rows) and no leftover faults."""
    from credentials.models import Model

    for name, display, provider, max_out, adaptive, aliases in SEED:
        Model.objects.get_or_create(name=name, defaults={
            "display_name": display, "provider": provider, "max_output_tokens": max_out,
            "adaptive_thinking": adaptive, "aliases": aliases})
    fake.reset()


@pytest.fixture
def gateway(gateway_url: str, fake: FakeUpstreams, catalog_seeded: None) -> Iterator[str]:
    """The gateway's base URL with a clean world: seeded catalog, empty caches, no faults."""
    from gateway import catalog, keycache, limits, pool

    keycache.clear()
    limits.reset()
    # The in-thread server writes fair-share windows every second; each test's teardown waits for that
    # write, so a second per test was a quarter of the suite's time.
    limits.SHARE_FLUSH_SECONDS = 0.05
    catalog.invalidate()
    pool.invalidate()
    yield gateway_url
    _drain_usage()


def _drain_usage() -> None:
    """Wait until the server finished every request of the test and wrote its usage."""
    from gateway import limits
    from gateway.usage import writer as usage
    from gateway.usage.metrics import in_flight

    deadline = time.monotonic() + 15
    while in_flight() or not usage.idle() or not limits.idle():  # limits: tokens still to be counted
        if time.monotonic() > deadline:
            # Left behind, they would be counted by the next test: fail here instead.
            usage.discard()
            pytest.fail(f"the gateway did not settle: {in_flight()} requests in flight, usage writer idle={usage.idle()}")
        time.sleep(0.05)


REDIS_ENV = "PROXYHUB_TEST_REDIS_URL"
REDIS_FALLBACK_URL = "redis://127.0.0.1:6379/15"
# Each test session keeps its Redis keys under its own prefix: parallel runs never see each other's.
REDIS_TEST_PREFIX = f"proxyhub-test-{os.getpid()}:"


def redis_test_url() -> str | None:
    """The Redis for the shared-state tests: PROXYHUB_TEST_REDIS_URL (CI sets it, so a Redis that does
    not answer fails those tests), else a local Redis on the default port if one answers, else None."""
    if os.environ.get(REDIS_ENV):
        return os.environ[REDIS_ENV]
    import redis

    client = redis.Redis.from_url(REDIS_FALLBACK_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()
    return REDIS_FALLBACK_URL


def clear_redis_test_keys(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=REDIS_TEST_PREFIX + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["database", "redis"])
def shared_backend(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """Run a test once with each shared-state backend; the Redis run skips (saying why) without a Redis."""
    if request.param == "redis":
        url = redis_test_url()
        if url is None:
            pytest.skip(f"no Redis: set {REDIS_ENV} or start redis-server on 127.0.0.1:6379 (.ci/run does both)")
        settings.REDIS_URL, settings.PROXYHUB_REDIS_PREFIX = url, REDIS_TEST_PREFIX
        clear_redis_test_keys(url)
        yield "redis"
        clear_redis_test_keys(url)
    else:
        settings.REDIS_URL = ""
        yield "database"


@pytest.fixture
def api_key_factory(db: None) -> Callable[..., tuple[Any, str]]:
    from django.contrib.auth import get_user_model

    from accounts.services import issue_key

    def make(username: str = "alice", models: list[str] | None = None, **kwargs: Any) -> tuple[Any, str]:
        user, _ = get_user_model().objects.get_or_create(username=username)
        return issue_key(user, allowed_models=models or [], **kwargs)

    return make


@pytest.fixture
def credential_factory(db: None, fake: FakeUpstreams) -> Callable[..., Any]:
    """Make a credential holding tokens the fake upstream really issued."""
    from credentials.models import Credential

    def make(provider: str = "claude", *, expires_in: int = 28800, email: str | None = None,
             **fields: Any) -> Any:
        n = Credential.objects.count() + 1
        email = email or f"acct{n}@example.com"
        if provider == "claude":
            tokens = fake.issue_claude_tokens(email=email, expires_in=max(expires_in, 1))
            account_id = tokens["account"]["uuid"]
        else:
            tokens = fake.issue_codex_tokens(email=email, account_id=f"acct-{n}", expires_in=max(expires_in, 1))
            account_id = f"acct-{n}"
        return Credential.objects.create(
            provider=provider, label=email, email=email, account_id=account_id,
            access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
            id_token=tokens.get("id_token", ""), expires_at=timezone.now() + timedelta(seconds=expires_in),
            **fields,
        )

    return make


def wait_for_usage(count: int, timeout: float = 15.0) -> list[Any]:
    """The usage records, once at least ``count`` exist (the writer batches; a loaded machine can hold
    its SQLite write for seconds, so the wait is generous: it returns as soon as the rows are there)."""
    from gateway.models import UsageRecord

    deadline = time.monotonic() + timeout
    while True:
        records = list(UsageRecord.objects.order_by("id"))
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


CHROMIUM = Path(os.environ.get("PROXYHUB_TEST_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    """A Playwright page in Debian's Chromium (never a downloaded browser); skips when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def outside_the_browser_loop(query: Callable[[], Any]) -> Any:
    """Run ORM code in a thread: Playwright's sync API keeps an event loop running in this one,
    and Django refuses sync queries there."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def run() -> Any:
        try:
            return query()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()
