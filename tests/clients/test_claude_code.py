"""The real Claude Code (tests/clients/package.json pins it; scripts/install-clients installs it) against
the gateway and the fake upstreams, driven as PROTOCOLS.md §7.2 and §7.4 say: ``claude -p PROMPT
--output-format json --model M``, non-interactive, with a scratch HOME and config dir, and offline.

Offline is checked, not assumed: HTTP(S)_PROXY points at a listener that records every connection, and
only 127.0.0.1 (the gateway) bypasses it, so any request for the Internet (telemetry, updates, feature
flags) fails the test. Claude Code 2.1.332 honours the proxy variables for its own API calls too.

Each model family (a claude-* model passed through to the fake Anthropic, a gpt-* model translated to
the fake Codex backend) gets a plain answer and a tool round trip: the fake model calls the first tool
offered when the prompt says "tool", filling its required strings with "x"; Claude Code is given only
its Bash tool, so it runs ``x``, a script on PATH here, and sends its output back as a tool_result.

Skipped when the binary is missing, unless PROXYHUB_REQUIRE_CLIENTS=1 (CI), where a missing binary fails.
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.clients.installed import installed
from tests.conftest import wait_for_usage
from tests.fakes.anthropic_rules import BILLING_PREFIX, IDENTITY_SENTENCES, OAUTH_BETA

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = Path(__file__).resolve().parent
CLAUDE_BIN = Path(os.environ.get("PROXYHUB_CLAUDE_BIN") or CLIENTS / "node_modules" / ".bin" / "claude")
VERSION = json.loads((CLIENTS / "package.json").read_text())["dependencies"]["@anthropic-ai/claude-code"]
SONNET, GPT, HAIKU = "claude-sonnet-4-6", "gpt-5.5", "claude-haiku-4-5-20251001"
TOOL_OUTPUT = "x ran here"
PROMPTS = {"plain": ("say hello", "Echo: say hello"), "tool": ("use the tool please", f"Tool said: {TOOL_OUTPUT}")}
# The environment of the machine running the tests must not reach Claude Code: its own key, model or
# settings, a proxy, or ProxyHub's settings would change what it sends.
INHERITED_PREFIXES = ("ANTHROPIC_", "CLAUDE", "DISABLE_", "ENABLE_", "PROXYHUB_", "OPENAI_")
PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(scope="module")
def claude() -> Path:
    return installed(CLAUDE_BIN, "Claude Code", VERSION, env={"DISABLE_AUTOUPDATER": "1"})


@pytest.fixture
def key(api_key_factory) -> tuple[Any, str]:
    return api_key_factory(models=["gpt-*", "claude-*"])


@pytest.fixture
def accounts(credential_factory) -> dict[str, Any]:
    return {"claude": credential_factory("claude"), "codex": credential_factory("codex")}


@pytest.fixture
def internet() -> Iterator[tuple[str, list[str]]]:
    """A proxy that serves nothing and records the first line of every connection made to it."""
    seen: list[str] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed at teardown
            with conn:
                conn.settimeout(2)
                try:
                    seen.append(conn.recv(512).split(b"\r\n")[0].decode("latin-1"))
                except OSError as exc:
                    seen.append(f"connection without a request line: {exc!r}")

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    server.close()


@dataclass
class Run:
    result: dict[str, Any]  # the --output-format json result
    output: str  # stdout + stderr
    work: Path  # the working directory (the Bash tool runs there)


def run_claude(claude: Path, tmp_path: Path, proxy: str, prompt: str, model: str | None,
               env: dict[str, str]) -> Run:
    """``claude -p PROMPT --output-format json [--model M]`` with only the Bash tool, allowed without
    a prompt; ``env`` carries ANTHROPIC_BASE_URL and the key. Fails unless it exits 0 with a success."""
    home, work, bin_dir = tmp_path / "home", tmp_path / "work", tmp_path / "bin"
    for folder in (home, work, bin_dir):
        folder.mkdir(exist_ok=True)
    script = bin_dir / "x"  # what the Bash tool runs when the fake model calls it with command "x"
    script.write_text(f"#!/bin/sh\necho '{TOOL_OUTPUT}'\n: > x-ran\n")
    script.chmod(0o755)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(INHERITED_PREFIXES) and k.upper() not in PROXY_NAMES}
    offline = {
        "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude"), "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }
    # Only Bash: Claude Code's first default tool is Agent, which starts a background subagent whose
    # completion notice mentions a "tool", so the fake model would call Agent again, and again.
    args = ["-p", prompt, "--output-format", "json", "--tools", "Bash", "--allowedTools", "Bash",
            "--no-session-persistence"] + (["--model", model] if model else [])
    completed = subprocess.run([str(claude), *args], cwd=work, env={**base, **offline, **env},
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=50)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    result = json.loads(completed.stdout)
    assert result["subtype"] == "success" and result["is_error"] is False, output
    return Run(result, output, work)


def served(count: int) -> list[Any]:
    """The usage rows once ``count`` exist; each a 200 that counted tokens both ways."""
    rows = wait_for_usage(count, timeout=30)
    assert len(rows) == count, [(r.endpoint, r.requested_model, r.status_code) for r in rows]
    for row in rows:
        assert row.endpoint == "messages" and row.status_code == 200 and row.outcome == "ok", row.__dict__
        assert row.output_tokens > 0 and row.input_tokens + row.cache_read_tokens + row.cache_write_tokens > 0
    return rows


def assert_claude_upstream(fake, account: Any, count: int) -> list[Any]:
    """What the fake Anthropic received: Claude Code's own request, on the account's OAuth token."""
    seen = fake.requests("claude")
    assert len(seen) == count and all(r.status == 200 for r in seen), seen
    for request in seen:
        assert request.path == "/v1/messages" and request.query.get("beta") == "true"
        assert request.headers["authorization"] == f"Bearer {account.access_token}"  # the account's, not the key
        assert "x-api-key" not in request.headers
        betas = request.headers["anthropic-beta"].split(",")
        assert OAUTH_BETA in betas and "claude-code-20250219" in betas, betas  # added; Claude Code's kept
        assert request.headers["user-agent"].startswith(f"claude-cli/{VERSION} ")
        body = request.json
        assert body["stream"] is True and [t["name"] for t in body["tools"]] == ["Bash"]
        # Passed through as Claude Code built it: its billing line, then its identity, no second one added.
        texts = [block["text"] for block in body["system"]]
        assert texts[0].startswith(BILLING_PREFIX) and texts[1] in IDENTITY_SENTENCES, texts[:2]
        assert not any(t in IDENTITY_SENTENCES for t in texts[2:])
    return seen


CASES = [
    pytest.param(SONNET, "plain", {}, id="claude-plain"),
    pytest.param(SONNET, "tool", {}, id="claude-tool"),
    pytest.param(GPT, "plain", {}, id="gpt-plain"),
    # Claude Code offers a GPT model a DeferredToolPlaceholder (defer_loading: true) first; it must not
    # reach Codex as a callable function.
    pytest.param(GPT, "tool", {}, id="gpt-tool"),
    # The same round trip with Claude Code's tool search off (no placeholder): the translation of the
    # tool call and its result works.
    pytest.param(GPT, "tool", {"ENABLE_TOOL_SEARCH": "false"}, id="gpt-tool-without-tool-search"),
]


@pytest.mark.parametrize(("model", "kind", "extra_env"), CASES)
def test_claude_code_to_both_families(gateway, claude, key, accounts, fake, tmp_path, internet, model, kind,
                                      extra_env):
    _, raw = key
    proxy, reached = internet
    prompt, expected = PROMPTS[kind]
    env = {"ANTHROPIC_BASE_URL": gateway, "ANTHROPIC_AUTH_TOKEN": raw, **extra_env}  # the root: no /v1
    run = run_claude(claude, tmp_path, proxy, prompt, model, env)
    assert run.result["result"].startswith(expected), run.result["result"]
    assert raw not in run.output
    assert reached == []
    turns = 2 if kind == "tool" else 1
    assert run.result["num_turns"] == turns
    rows = served(turns)
    provider = "claude" if model == SONNET else "codex"
    credential = accounts[provider].id
    assert {(r.provider, r.requested_model, r.credential_id) for r in rows} == {(provider, model, credential)}
    # Claude Code's session (its X-Claude-Code-Session-Id header) is the usage rows' conversation.
    assert {r.conversation for r in rows} == {run.result["session_id"]}
    if provider == "claude":
        upstream = assert_claude_upstream(fake, accounts["claude"], turns)
        assert fake.requests("codex") == []
        last = upstream[-1].json["messages"][-1]["content"]
    else:
        upstream = fake.requests("codex")
        assert len(upstream) == turns and all(r.status == 200 and r.json["model"] == model for r in upstream)
        assert all(r.headers["chatgpt-account-id"] == accounts["codex"].account_id for r in upstream)
        assert fake.requests("claude") == []
        last = upstream[-1].json["input"][-1]
    if kind == "tool":
        assert (run.work / "x-ran").exists(), "Claude Code did not run the tool"
        # What went upstream last is the tool's real output, as a tool_result / function_call_output.
        assert TOOL_OUTPUT in json.dumps(last)
        assert ("tool_result" if provider == "claude" else "function_call_output") in json.dumps(last)


def test_claude_code_with_its_key_in_x_api_key(gateway, claude, key, accounts, fake, tmp_path, internet):
    """ANTHROPIC_API_KEY is sent as ``x-api-key``; the gateway takes it and never forwards it."""
    api_key, raw = key
    proxy, reached = internet
    env = {"ANTHROPIC_BASE_URL": gateway, "ANTHROPIC_API_KEY": raw}
    run = run_claude(claude, tmp_path, proxy, "say hello", SONNET, env)
    assert run.result["result"] == "Echo: say hello"
    assert raw not in run.output and reached == []
    [row] = served(1)
    assert row.api_key_id == api_key.id and row.provider == "claude"
    assert_claude_upstream(fake, accounts["claude"], 1)


def generated_env(gateway: str, prefix: str, raw: str) -> dict[str, str]:
    """The exports ProxyHub generates for the key (``client_config PREFIX --format claude-code``)."""
    out = io.StringIO()
    call_command("client_config", prefix, format="claude-code", base_url=gateway, stdout=out)
    env = {}
    for line in out.getvalue().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = raw if value == "$PROXYHUB_API_KEY" else value
    return env


def test_claude_code_haiku_tier_is_served_with_the_generated_config(gateway, claude, key, accounts, fake,
                                                                    tmp_path, internet):
    """Claude Code's small/fast model is its Haiku tier when one is configured (otherwise, with a base URL
    and a key, 2.1.332 uses the main model for background work, and its own Haiku default,
    claude-haiku-5-5, is not in the seeded catalog). The generated config names the catalog's Haiku."""
    api_key, raw = key
    proxy, reached = internet
    env = generated_env(gateway, api_key.prefix, raw)
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == HAIKU and env["ANTHROPIC_MODEL"] == SONNET
    main = run_claude(claude, tmp_path, proxy, "say hello", None, env)  # ANTHROPIC_MODEL
    haiku = run_claude(claude, tmp_path, proxy, "say hello again", "haiku", env)  # the tier's alias
    assert main.result["result"] == "Echo: say hello" and haiku.result["result"] == "Echo: say hello again"
    assert raw not in main.output + haiku.output and reached == []
    rows = served(2)
    assert [(r.requested_model, r.provider) for r in rows] == [(SONNET, "claude"), (HAIKU, "claude")]
    assert [r.json["model"] for r in assert_claude_upstream(fake, accounts["claude"], 2)] == [SONNET, HAIKU]


def test_claude_code_sonnet_tier_is_served_with_the_generated_config(gateway, claude, key, accounts, fake,
                                                                     tmp_path, internet):
    api_key, raw = key
    proxy, _ = internet
    run = run_claude(claude, tmp_path, proxy, "say hello", "sonnet", generated_env(gateway, api_key.prefix, raw))
    assert run.result["result"] == "Echo: say hello"
    assert served(1)[0].requested_model.startswith("claude-sonnet-")
