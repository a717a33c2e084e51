"""The real Codex CLI (tests/clients/package.json pins it; scripts/install-clients installs it) against
the gateway and the fake upstreams, driven as PROTOCOLS.md §7.4 says: ``codex exec``, non-interactive,
offline, with its own config in a scratch CODEX_HOME.

Over WebSocket: the built-in OpenAI provider pointed at ProxyHub with ``openai_base_url`` (it always
tries the WebSocket mode, §3.7); the run must not fall back to HTTP. Over HTTP: the provider config
ProxyHub generates for a key (``wire_api = "responses"``). Each for both model families, a plain answer
and a tool round trip (the fake model calls the first tool offered when the prompt says "tool").

Skipped when the binary is missing, unless PROXYHUB_REQUIRE_CLIENTS=1 (CI), where a missing binary fails.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from gateway.formats.responses_chain import ResponseChain
from tests.clients.installed import installed
from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = Path(__file__).resolve().parent
CODEX = Path(os.environ.get("PROXYHUB_CODEX_BIN") or CLIENTS / "node_modules" / ".bin" / "codex")
VERSION = json.loads((CLIENTS / "package.json").read_text())["dependencies"]["@openai/codex"]
GPT, CLAUDE = "gpt-5.5", "claude-sonnet-4-6"
# What Codex prints (or logs) when it gives up on the WebSocket and uses HTTP for the rest of the session.
FALLBACK_MARKERS = ("fallback_to_http", "falling back to http", "fall back to http", "https fallback", "upgrade required")


@pytest.fixture(scope="module")
def codex() -> Path:
    return installed(CODEX, "Codex CLI", VERSION)


@pytest.fixture
def key(api_key_factory) -> tuple[Any, str]:
    return api_key_factory(models=["gpt-*", "claude-*"])


@pytest.fixture
def accounts(credential_factory) -> None:
    credential_factory("claude")
    credential_factory("codex")


def run_codex(codex: Path, home: Path, config: str, prompt: str, env: dict[str, str]) -> str:
    """``codex exec PROMPT`` with ``config`` as its config.toml; returns stdout + stderr."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    # Nothing that would reach the Internet: no update check, no analytics, no plugin or app catalogs.
    (codex_home / "config.toml").write_text(config + '\ncheck_for_update_on_startup = false\n'
                                            '\n[analytics]\nenabled = false\n'
                                            '\n[features]\nplugins = false\nremote_plugin = false\napps = false\n')
    work = home / "work"
    work.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_", "PROXYHUB_"))}
    result = subprocess.run(
        [str(codex), "exec", "--skip-git-repo-check", "--ephemeral", "--color", "never", prompt],
        cwd=work, env={**base, "HOME": str(home), "CODEX_HOME": str(codex_home), "RUST_LOG": "warn", **env},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def websocket_config(gateway: str, model: str) -> str:
    """The built-in OpenAI provider moved to ProxyHub: Codex tries the WebSocket mode first."""
    return f'model = "{model}"\nmodel_reasoning_effort = "medium"\nopenai_base_url = "{gateway}/v1"\n'


def generated_config(gateway: str, prefix: str) -> str:
    """The config.toml ProxyHub generates for the key (``client_config PREFIX --format codex``)."""
    out = io.StringIO()
    call_command("client_config", prefix, format="codex", base_url=gateway, stdout=out)
    return out.getvalue()


PROMPTS = {"plain": ("say hello", "Echo: say hello"), "tool": ("use the tool please", "Tool said:")}


def responses_served(endpoint: str, count: int, timeout: float = 30.0) -> list[Any]:
    """The usage rows of ``endpoint`` once ``count`` exist (the writer batches; warm-ups have rows too)."""
    from gateway.models import UsageRecord

    deadline = time.monotonic() + timeout
    while True:
        rows = list(UsageRecord.objects.filter(endpoint=endpoint).order_by("id"))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["plain", "tool"])
@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_codex_cli_over_websocket_to_both_families(gateway, codex, key, accounts, fake, tmp_path, monkeypatch,
                                                   model, kind):
    _, raw = key
    chained: list[bool] = []  # per response.create: did Codex send only new items after previous_response_id?
    expand = ResponseChain.expand

    def watched(self: ResponseChain, message: dict[str, Any]) -> dict[str, Any]:
        chained.append(bool(message.get("previous_response_id")))
        return expand(self, message)

    monkeypatch.setattr(ResponseChain, "expand", watched)  # the gateway runs in this process
    prompt, expected = PROMPTS[kind]
    output = run_codex(codex, tmp_path, websocket_config(gateway, model), prompt, {"CODEX_API_KEY": raw})
    assert expected in output, output
    lowered = output.lower()
    assert not any(marker in lowered for marker in FALLBACK_MARKERS), output
    assert "reconnecting" not in lowered, output
    assert raw not in output
    turns = 2 if kind == "tool" else 1
    served = responses_served("responses_ws", turns)
    rows = wait_for_usage(len(served), timeout=30)
    assert all(r.endpoint in ("responses_ws", "responses_ws_warmup") for r in rows), [r.endpoint for r in rows]
    assert len(served) == turns and all(r.status_code == 200 and r.output_tokens > 0 for r in served)
    assert {r.provider for r in served} == {"codex" if model == GPT else "claude"}
    # Codex 0.171 warms up, then continues on the warm-up and on each response with only the new items.
    assert len(chained) == turns + 1 and chained[0] is False and all(chained[1:]), chained
    if kind == "tool":
        # The second response carried the tool's output; the upstream got the call before it.
        upstream = fake.requests("codex" if model == GPT else "claude")[-1].json
        assert "function_call_output" in json.dumps(upstream) or "tool_result" in json.dumps(upstream)


@pytest.mark.parametrize("kind", ["plain", "tool"])
@pytest.mark.parametrize("family", ["gpt-*", "claude-*"])
def test_codex_cli_over_http_with_the_generated_config(gateway, codex, api_key_factory, accounts, fake, tmp_path,
                                                       family, kind):
    api_key, raw = api_key_factory(models=[family])  # the generated config picks a model of the family
    prompt, expected = PROMPTS[kind]
    config = generated_config(gateway, api_key.prefix)
    assert 'wire_api = "responses"' in config
    output = run_codex(codex, tmp_path, config, prompt, {"PROXYHUB_API_KEY": raw})
    assert expected in output, output
    assert raw not in output
    turns = 2 if kind == "tool" else 1
    rows = wait_for_usage(turns, timeout=30)
    assert [r.endpoint for r in rows] == ["responses"] * turns
    assert {r.provider for r in rows} == {"codex" if family == "gpt-*" else "claude"}


def test_codex_cli_named_provider_with_supports_websockets_uses_the_websocket(gateway, codex, api_key_factory,
                                                                             accounts, fake, tmp_path):
    api_key, raw = api_key_factory(models=["gpt-*"])
    config = generated_config(gateway, api_key.prefix) + "supports_websockets = true\n"
    output = run_codex(codex, tmp_path, config, "say hello", {"PROXYHUB_API_KEY": raw})
    assert "Echo: say hello" in output, output
    served = responses_served("responses_ws", 1)
    assert len(served) == 1 and served[0].status_code == 200
    assert all(r.endpoint != "responses" for r in wait_for_usage(len(served), timeout=30))
