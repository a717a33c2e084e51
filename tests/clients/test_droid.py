"""The real Factory Droid (tests/clients/package.json pins it; scripts/install-clients installs it) against
the gateway and the fake upstreams, driven as PROTOCOLS.md §7.4 says: ``droid exec -m <custom model id>
-o stream-json PROMPT``, non-interactive and offline (``FACTORY_AIRGAP_ENABLED=1``: no Factory login,
feature flags, settings fetch or telemetry), with the ``~/.factory/settings.json`` ProxyHub generates for
the key (``client_config PREFIX --format factory``) in a scratch HOME, so this machine's config is never read.

The three providers Droid has for custom models: ``anthropic`` (→ /v1/messages) for Claude and ``openai``
(→ /v1/responses) for GPT, as generated, and ``generic-chat-completion-api`` (→ /v1/chat/completions) for
both families. ProxyHub does not generate Chat entries (Droid 0.225 itself tells the model that a Claude or
GPT name belongs with ``anthropic`` / ``openai``), so those runs take the generated entry with only its
provider and base URL changed, as a user following §7.1's example writes it. Each with a plain answer and a
tool round trip: the fake model calls the first tool offered when the prompt says "tool"; Droid offers LS
first once Read is removed (the fake's ``{}`` arguments are all LS needs, where Read wants an absolute
path), runs it in its working directory and sends the listing back. Also: a second turn replays the first
with its thinking, Droid derives the same ids the generated entries carry, and a wrong key ends the run at
once with ProxyHub's message.

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

from tests.clients.installed import installed
from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = Path(__file__).resolve().parent
DROID = Path(os.environ.get("PROXYHUB_DROID_BIN") or CLIENTS / "node_modules" / ".bin" / "droid")
# The binary reports its platform package's version, pinned on its own (package.json says why).
VERSION = json.loads((CLIENTS / "package.json").read_text())["dependencies"]["@factory/cli-linux-x64"]
KEY_ENV = "PROXYHUB_API_KEY"  # the generated entries say "apiKey": "${PROXYHUB_API_KEY}"; Droid expands it
LISTED = "droid-listed-this.txt"  # a file in Droid's working directory: its LS result names it
CLAUDE, GPT = "claude-sonnet-4-6", "gpt-5.5"
CHAT = "generic-chat-completion-api"


@pytest.fixture(scope="module")
def droid() -> Path:
    return installed(DROID, "Factory Droid", VERSION)


@pytest.fixture
def accounts(credential_factory) -> None:
    credential_factory("claude")
    credential_factory("codex")


def generated_settings(gateway: str, prefix: str) -> dict[str, Any]:
    """The settings.json ProxyHub generates for the key (``client_config PREFIX --format factory``)."""
    out = io.StringIO()
    call_command("client_config", prefix, format="factory", base_url=gateway, stdout=out)
    settings: dict[str, Any] = json.loads(out.getvalue())
    return settings


def settings_for(gateway: str, prefix: str, model: str, provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The generated settings and the entry of ``model`` in them, made a Chat one for the Chat provider."""
    settings = generated_settings(gateway, prefix)
    entry = next(e for e in settings["customModels"] if e["model"] == model)
    if provider == CHAT:
        entry.update(provider=CHAT, baseUrl=f"{gateway}/v1")
    assert entry["provider"] == provider and entry["apiKey"] == "${%s}" % KEY_ENV
    return settings, entry


def droid_exec(droid: Path, home: Path, settings: dict[str, Any], args: list[str], key: str,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``droid exec ARGS`` with ``settings`` as ~/.factory/settings.json under the scratch ``home``, in a
    working directory holding the file LS will list, the key in the variable the settings name."""
    factory = home / ".factory"
    factory.mkdir(parents=True, exist_ok=True)
    (factory / "settings.json").write_text(json.dumps(settings, indent=2))
    work = home / "work"
    work.mkdir(exist_ok=True)
    (work / LISTED).write_text("\n")
    # Nothing of this machine's: no Factory key or settings, no provider variables, no proxy.
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("FACTORY_", "DROID_", "ANTHROPIC_", "OPENAI_", "PROXYHUB_"))
            and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    return subprocess.run([str(droid), "exec", *args], cwd=work,
                          env={**base, "HOME": str(home), "FACTORY_AIRGAP_ENABLED": "1", KEY_ENV: key},
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=50)


# --auto low: the tools the model calls run without a prompt (there is no one to answer one); LS needs no
# more. --remove-tools Read: LS becomes the first tool, the one the fake calls.
AGENT = ["--auto", "low", "--remove-tools", "Read", "-o", "stream-json"]


def events_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


# case: (model, Droid provider, ProxyHub endpoint, upstream)
CASES = {
    "claude-via-anthropic": (CLAUDE, "anthropic", "messages", "claude"),
    "gpt-via-openai": (GPT, "openai", "responses", "codex"),
    "claude-via-chat": (CLAUDE, CHAT, "chat", "claude"),
    "gpt-via-chat": (GPT, CHAT, "chat", "codex"),
}
PROMPTS = {"plain": ("say hello", "Echo: "), "tool": ("use the tool please", "Tool said: ")}


@pytest.mark.parametrize("kind", ["plain", "tool"])
@pytest.mark.parametrize("case", list(CASES))
def test_droid_with_the_generated_settings(gateway, droid, api_key_factory, accounts, fake, tmp_path, case, kind):
    model, provider, endpoint, upstream = CASES[case]
    api_key, raw = api_key_factory(models=["claude-*", "gpt-*"])
    settings, entry = settings_for(gateway, api_key.prefix, model, provider)
    prompt, expected = PROMPTS[kind]

    # The id the generated entry carries is the one Droid derives: -m finds the model by it.
    result = droid_exec(droid, tmp_path, settings, [*AGENT, "-m", entry["id"], prompt], raw)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    events = events_of(result)
    assert [e["model"] for e in events if e.get("subtype") == "init"] == [entry["id"]], output
    completions = [e for e in events if e.get("type") == "completion"]
    assert len(completions) == 1, output
    final = completions[0]["finalText"]
    assert final.startswith(expected), output
    if kind == "plain" and provider != CHAT:
        # (Through Chat, Droid's provider warning is a user message before the prompt, in the echo too.)
        assert final == expected + prompt, output
    assert raw not in output
    assert raw not in "".join(p.read_text(errors="replace") for p in (tmp_path / ".factory").rglob("*") if p.is_file())
    turns = 2 if kind == "tool" else 1
    rows = wait_for_usage(turns, timeout=30)
    assert [(r.endpoint, r.provider, r.requested_model, r.status_code) for r in rows] == \
        [(endpoint, upstream, model, 200)] * turns, output
    assert all(r.input_tokens + r.cache_read_tokens + r.cache_write_tokens > 0 and r.output_tokens > 0
               for r in rows), [(r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, r.output_tokens)
                                for r in rows]
    sent = fake.requests(upstream)
    assert [(r.json["model"], r.status) for r in sent] == [(model, 200)] * turns
    assert prompt in json.dumps(sent[0].json)
    if kind == "tool":
        # The second upstream request carried the result of the call the first one answered: LS's listing.
        first_call = "tool_use" if upstream == "claude" else "function_call"
        results = _tool_results(sent[1].json)
        assert len(results) == 1 and LISTED in json.dumps(results[0]), json.dumps(sent[1].json)[-2000:]
        assert any(part.get("type") == first_call for part in _parts(sent[1].json))
        assert LISTED in final


def _parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every content block (Anthropic) or input item (Responses) of an upstream request."""
    if "input" in body:
        return [item for item in body["input"] if isinstance(item, dict)]
    return [block for message in body["messages"] if isinstance(message.get("content"), list)
            for block in message["content"] if isinstance(block, dict)]


def _tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    # Only these: Droid's session-start reminder lists the working directory too.
    return [part for part in _parts(body) if part.get("type") in ("tool_result", "function_call_output")]


@pytest.mark.parametrize("case", list(CASES))
def test_droid_second_turn_replays_the_first_with_its_thinking(gateway, droid, api_key_factory, accounts, fake,
                                                               tmp_path, case):
    """Two user turns in one session (``--input-format stream-json``, deprecated in 0.225 but the offline way:
    ``-s`` fetches the session from Factory's servers). The third upstream request replays the first turn
    whole: the call, its result, the answer, and the thinking (a signed block for Claude, encrypted reasoning
    for GPT), which the fakes check like the real upstreams do. In this mode Droid prints only its init event,
    so the answers are read from what it sent back."""
    model, provider, endpoint, upstream = CASES[case]
    api_key, raw = api_key_factory(models=["claude-*", "gpt-*"])
    settings, entry = settings_for(gateway, api_key.prefix, model, provider)
    turns = "".join(json.dumps({"role": "user", "content": text}) + "\n"
                    for text in ("use the tool please", "say hello again"))
    result = droid_exec(droid, tmp_path, settings, [*AGENT, "--input-format", "stream-json", "-m", entry["id"]],
                        raw, stdin=turns)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and '"type":"error"' not in output, output
    assert raw not in output
    rows = wait_for_usage(3, timeout=30)
    assert [(r.endpoint, r.provider, r.status_code) for r in rows] == [(endpoint, upstream, 200)] * 3, output
    sent = fake.requests(upstream)
    assert [r.status for r in sent] == [200] * 3
    last = json.dumps(sent[2].json)
    assert len(results := _tool_results(sent[2].json)) == 1 and LISTED in json.dumps(results[0]), last[-2000:]
    assert last.rfind("say hello again") > last.rfind("Tool said: ") > 0
    if provider == "anthropic":
        assert any(p.get("type") == "thinking" and p.get("signature") for p in _parts(sent[2].json)), last[-2000:]
    if provider == "openai":
        assert any(p.get("type") == "reasoning" and p.get("encrypted_content") for p in _parts(sent[2].json))


def test_droid_derives_the_ids_the_generated_settings_carry(gateway, droid, api_key_factory, tmp_path):
    """Without the generated ``id`` fields Droid names each entry itself: the same ids (so a teammate's
    ``droid exec -m`` and /model agree with the config), listed when it is asked for a model it lacks."""
    from credentials.models import Model

    # A second model whose display name differs only in spacing: Droid collapses whitespace and numbers
    # the entries that then share a name.
    Model.objects.create(name="gpt-5.5-team", display_name="GPT-5.5 ", provider="codex", max_output_tokens=1000)
    api_key, _ = api_key_factory(models=[])  # no allowlist: every enabled model
    settings = generated_settings(gateway, api_key.prefix)
    generated = [e.pop("id") for e in settings["customModels"]]
    assert {"custom:GPT-5.5-[ProxyHub]-0", "custom:GPT-5.5-[ProxyHub]-1"} <= set(generated)
    for e in settings["customModels"]:
        del e["index"]
    result = droid_exec(droid, tmp_path, settings, ["-m", "custom:not-configured", "say hello"], "unused")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Invalid model: custom:not-configured" in output, output
    listed = output.split("Available custom models:", 1)[1].split("\n\n", 1)[0]
    assert [item.split(" (", 1)[0].strip() for item in listed.strip().split("), ")] == generated, output


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_droid_with_a_wrong_key_stops_at_once_with_proxyhubs_message(gateway, droid, api_key_factory, fake, tmp_path,
                                                                     model):
    """A 401 must end the run quickly and say why (PROTOCOLS.md §7.4: clients retry a 401 unless told)."""
    api_key, raw = api_key_factory(models=["claude-*", "gpt-*"])
    settings, entry = settings_for(gateway, api_key.prefix, model, "anthropic" if model == CLAUDE else "openai")
    wrong = raw[:-4] + ("aaaa" if not raw.endswith("aaaa") else "bbbb")
    started = time.monotonic()
    result = droid_exec(droid, tmp_path, settings, ["-o", "stream-json", "-m", entry["id"], "say hello"], wrong)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and time.monotonic() - started < 20, output
    errors = [e["message"] for e in events_of(result) if e.get("type") == "error"]
    assert any(m.startswith("401") and "Invalid API key" in m for m in errors), output
    assert wrong not in output and raw not in output
    assert fake.requests("claude") == [] and fake.requests("codex") == []
