"""``FakeUpstreams``: all four fakes on loopback, served from a background thread.

Each fake gets its own port (a gateway that mixes up base URLs then fails
loudly) and all run on one asyncio loop in a daemon thread, so tests may be
sync or run their own loop.  Tests control and inspect the fakes through the
thread-safe methods below; handlers never hold a lock across an await.

    with FakeUpstreams() as fakes:
        tokens = fakes.issue_claude_tokens()
        fakes.add_fault("claude", "rate_limited", unified_reset=1_900_000_000)
        ...
        assert fakes.requests("claude")[0].headers["anthropic-version"]
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from . import anthropic_app, codex_app, token_app
from .recording import Recorded
from .serving import WORLD, Quota, World
from .tokens import CODEX_EXPIRES_IN, Identity, stable_uuid

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
SHUTDOWN_GRACE = 0.1  # seconds a still-open stream gets before stop() cuts it


class FakeUpstreams:
    """Fake Claude API, Codex backend and both token endpoints."""

    def __init__(self) -> None:
        self._world = World()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: dict[str, web.AppRunner] = {}
        self._ports: dict[str, int] = {}
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # --- lifecycle -------------------------------------------------------

    def start(self) -> FakeUpstreams:
        """Start serving; blocks until every fake is listening.  Returns self."""
        if self._thread is not None:
            raise RuntimeError("FakeUpstreams already started")
        self._ready.clear()
        self._ports.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="fake-upstreams", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._startup_error is not None:
            self._thread.join(START_TIMEOUT)
            self._loop = self._thread = None
            raise RuntimeError("fake upstreams failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving and release the loop, sockets and thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT)
        self._loop = self._thread = None

    def __enter__(self) -> FakeUpstreams:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:  # reported to start() in the main thread
            self._startup_error = exc
            loop.run_until_complete(self._shutdown())  # release any site already listening
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        apps = {
            "claude": anthropic_app.build_app(),
            "codex": codex_app.build_app(),
            "claude_token": token_app.build_claude_app(),
            "codex_token": token_app.build_codex_app(),
        }
        for name, app in apps.items():
            app[WORLD] = self._world
            # handler_cancellation: a client that hangs up cancels its handler,
            # which is how the fakes notice cancelled streams at once.
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_GRACE)
            await runner.setup()
            self._runners[name] = runner
            await web.TCPSite(runner, HOST, 0).start()
            self._ports[name] = runner.addresses[0][1]

    async def _shutdown(self) -> None:
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()

    # --- addresses -------------------------------------------------------

    def _root(self, name: str) -> str:
        if name not in self._ports:
            raise RuntimeError("FakeUpstreams not started")
        return f"http://{HOST}:{self._ports[name]}"

    @property
    def claude_base_url(self) -> str:
        """Root URL; the gateway appends ``/v1/messages``."""
        return self._root("claude")

    @property
    def claude_token_url(self) -> str:
        return self._root("claude_token") + "/v1/oauth/token"

    @property
    def codex_base_url(self) -> str:
        """``.../backend-api/codex``; the gateway appends ``/responses``."""
        return self._root("codex") + "/backend-api/codex"

    @property
    def codex_token_url(self) -> str:
        return self._root("codex_token") + "/oauth/token"

    @property
    def claude_usage_url(self) -> str:
        """Claude's subscription-usage endpoint (PROTOCOLS.md §4.8)."""
        return self._root("claude") + "/api/oauth/usage"

    @property
    def codex_usage_url(self) -> str:
        """ChatGPT's subscription-usage endpoint (PROTOCOLS.md §5.10); not under the Codex base URL."""
        return self._root("codex") + "/backend-api/wham/usage"

    # --- tokens ----------------------------------------------------------

    def issue_claude_tokens(
        self, email: str = "a@example.com", expires_in: int = 28800, plan: str = "max"
    ) -> dict[str, Any]:
        """Register a live Claude token set; returns the token endpoint's JSON (§4.4)."""
        return self._world.tokens.issue(_claude_identity(email, expires_in, plan))

    def issue_codex_tokens(
        self,
        email: str = "a@example.com",
        account_id: str | None = None,
        plan: str = "plus",
        expires_in: int = CODEX_EXPIRES_IN,
    ) -> dict[str, Any]:
        """Register a live Codex token set; returns id_token, access_token, refresh_token, ...

        ``account_id`` defaults to a stable uuid derived from ``email``.
        """
        return self._world.tokens.issue(_codex_identity(email, account_id, plan, expires_in))

    def authorize_claude(
        self,
        code_challenge: str,
        state: str,
        redirect_uri: str,
        *,
        email: str = "a@example.com",
        expires_in: int = 28800,
        plan: str = "max",
    ) -> str:
        """Simulate the user approving on claude.ai; returns the authorization code."""
        identity = _claude_identity(email, expires_in, plan)
        return self._world.tokens.authorize(
            identity, code_challenge=code_challenge, state=state, redirect_uri=redirect_uri
        )

    def authorize_codex(
        self,
        code_challenge: str,
        state: str,
        redirect_uri: str,
        *,
        email: str = "a@example.com",
        account_id: str | None = None,
        plan: str = "plus",
        expires_in: int = CODEX_EXPIRES_IN,
    ) -> str:
        """Simulate the user approving on auth.openai.com; returns the authorization code."""
        identity = _codex_identity(email, account_id, plan, expires_in)
        return self._world.tokens.authorize(
            identity, code_challenge=code_challenge, state=state, redirect_uri=redirect_uri
        )

    def expire_access_token(self, token: str) -> None:
        """Make an issued access token expired from now on (both providers)."""
        self._world.tokens.expire_access(token)

    def expire_refresh_token(self, token: str) -> None:
        """Make a live refresh token expired (Claude: invalid_grant; OpenAI: refresh_token_expired)."""
        self._world.tokens.expire_refresh(token)

    # --- faults and quota --------------------------------------------------

    def add_fault(self, provider: str, kind: str, *, token: str | None = None, times: int = 1, **opts: Any) -> None:
        """Queue a fault; see faults.KINDS.  ``token`` limits it to one access
        token (token endpoints: one refresh token)."""
        self._world.faults.add(provider, kind, token=token, times=times, opts=opts)

    def pending_faults(self, provider: str | None = None) -> int:
        return self._world.faults.pending(provider)

    def set_utilization(self, provider: str, five_hour: float, seven_day: float) -> None:
        """Usage (0..1) reported in rate-limit headers: Claude's unified-5h/7d, Codex's primary/secondary."""
        with self._world.quota_lock:
            self._world.quotas[provider] = Quota(five_hour, seven_day)

    def set_account_utilization(
        self,
        provider: str,
        account_id: str,
        five_hour: float,
        seven_day: float,
        *,
        scoped: dict[str, float] | None = None,
        weekly_only: bool = False,
        five_hour_reset: float | None = None,
        seven_day_reset: float | None = None,
    ) -> None:
        """One account's usage (0..1), in its headers and on the usage endpoints.

        ``scoped``: Claude's model-scoped weekly windows, e.g. ``{"sonnet": 0.56}``.
        ``weekly_only``: a ChatGPT plan whose only window is a weekly primary one.
        Resets are unix seconds (default: the next whole hour, and six days on).
        """
        quota = Quota(five_hour, seven_day, tuple((scoped or {}).items()), weekly_only, five_hour_reset,
                      seven_day_reset)
        with self._world.quota_lock:
            self._world.account_quotas[(provider, account_id)] = quota

    # --- inspection --------------------------------------------------------

    def requests(self, provider: str) -> list[Recorded]:
        """Requests received by "claude", "codex", "claude_token", "codex_token", "claude_usage" or "codex_usage"."""
        return self._world.recorder.requests(provider)

    def token_requests(self, provider: str) -> list[Recorded]:
        """Requests to a token endpoint: provider "claude" or "codex"."""
        name = provider if provider.endswith("_token") else f"{provider}_token"
        return self._world.recorder.requests(name)

    def counter(self, name: str) -> int:
        return self._world.recorder.counter(name)

    def last_usage(self, provider: str) -> dict[str, Any] | None:
        """The usage object last reported by a fake, in its wire shape."""
        return self._world.recorder.last_usage(provider)

    def open_streams(self, provider: str) -> int:
        return self._world.recorder.open_streams(provider)

    def cancelled_streams(self, provider: str) -> int:
        return self._world.recorder.cancelled_streams(provider)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` until true or timeout; the fakes act on another thread."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def reset(self) -> None:
        """Clear faults, records, counters, usage and prompt caches; issued tokens stay valid."""
        self._world.faults.clear()
        self._world.recorder.reset()
        self._world.prompt_cache.clear()
        with self._world.quota_lock:
            self._world.quotas = {"claude": Quota(), "codex": Quota()}
            self._world.account_quotas = {}


def _claude_identity(email: str, expires_in: int, plan: str = "max") -> Identity:
    return Identity("claude", email, stable_uuid("claude-account", email), plan, expires_in)


def _codex_identity(email: str, account_id: str | None, plan: str, expires_in: int) -> Identity:
    return Identity("codex", email, account_id or stable_uuid("chatgpt-account", email), plan, expires_in)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel tasks still pending at stop so the loop closes without warnings."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
