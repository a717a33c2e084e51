"""Ready-made client configurations for one key: Factory Droid, Claude Code, Codex CLI.

The raw key is never stored, so configs reference it through an environment
variable (Factory expands ``${VAR}`` in settings.json) unless it is passed in
right after issuing.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

KEY_ENV = "PROXYHUB_API_KEY"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    display_name: str
    provider: str  # "claude" or "codex"
    max_output_tokens: int


def factory_model_ids(display_names: Iterable[str]) -> list[str]:
    """The ids Droid gives custom models, the ones ``droid exec -m`` takes: ``custom:``, the display name
    with each run of whitespace made one ``-``, then ``-`` and how many earlier entries have that same
    name (Droid 0.225's own rule)."""
    ids: list[str] = []
    seen: Counter[str] = Counter()
    for name in display_names:
        slug = "-".join(name.split())
        ids.append(f"custom:{slug}-{seen[slug]}")
        seen[slug] += 1
    return ids


def factory_settings(base_url: str, models: Iterable[ModelInfo], api_key: str | None = None) -> str:
    """``~/.factory/settings.json``: anthropic entries take the root, the others root + /v1 (PROTOCOLS.md §7.1).

    Each entry carries the ``id`` Droid would derive for it and its ``index`` (its place in the list), as
    Droid writes them itself, so the id a teammate passes to ``droid exec -m`` is there to read."""
    root = base_url.rstrip("/")
    listed = list(models)
    names = [f"{m.display_name} [ProxyHub]" for m in listed]
    entries = []
    for index, (m, name, model_id) in enumerate(zip(listed, names, factory_model_ids(names))):
        anthropic = m.provider == "claude"
        entries.append({
            "model": m.name,
            "id": model_id,
            "index": index,
            "displayName": name,
            "baseUrl": root if anthropic else f"{root}/v1",
            "apiKey": api_key or f"${{{KEY_ENV}}}",
            "provider": "anthropic" if anthropic else "openai",
            "maxOutputTokens": m.max_output_tokens,
        })
    return json.dumps({"customModels": entries}, indent=2) + "\n"


def claude_code_env(base_url: str, models: Iterable[ModelInfo], api_key: str | None = None) -> str:
    """Shell exports for Claude Code (no /v1: it appends /v1/messages itself)."""
    claude = [m.name for m in models if m.provider == "claude"]
    lines = [
        f"export ANTHROPIC_BASE_URL={base_url.rstrip('/')}",
        f"export ANTHROPIC_AUTH_TOKEN={api_key or '$' + KEY_ENV}",
        "export ANTHROPIC_API_KEY=",
        "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    ]
    if claude:
        # The newest sonnet / opus / haiku by name (catalog names sort by version). Every tier is
        # named: Claude Code's own tier defaults (`--model sonnet`, `/model opus`) are newer names
        # than the catalog may hold, and an unmapped tier would answer "Unknown model".
        main = max((n for n in claude if "sonnet" in n), default=claude[0])
        large = max((n for n in claude if "opus" in n), default=main)
        small = max((n for n in claude if "haiku" in n), default=main)
        lines += [f"export ANTHROPIC_MODEL={main}", f"export ANTHROPIC_DEFAULT_SONNET_MODEL={main}",
                  f"export ANTHROPIC_DEFAULT_OPUS_MODEL={large}", f"export ANTHROPIC_DEFAULT_HAIKU_MODEL={small}"]
    return "\n".join(lines) + "\n"


def codex_model(models: Iterable[ModelInfo]) -> str | None:
    """The model Codex CLI starts with: a GPT model the key may use, else one of its Claude models
    (ProxyHub translates Codex's Responses requests for Claude), else None (the key allows none)."""
    listed = list(models)
    gpt = [m.name for m in listed if m.provider == "codex"]
    if gpt:
        return gpt[0]
    claude = [m.name for m in listed if m.provider == "claude"]
    if claude:
        return max((n for n in claude if "sonnet" in n), default=claude[0])
    return None


def codex_config(base_url: str, models: Iterable[ModelInfo], api_key: str | None = None) -> str:
    """``~/.codex/config.toml``; the key goes in the PROXYHUB_API_KEY environment variable.

    Only ever names a model the key may use: a claude-only key gets a Claude model. Given ``api_key``
    (the page a key is issued on), a closing comment holds the export line with it filled in.
    """
    model = codex_model(models)
    first = f'model = "{model}"\n' if model else "# This key may use no enabled model: ask your ProxyHub admin.\n"
    return (
        first +
        'model_provider = "proxyhub"\n'
        'model_reasoning_effort = "medium"\n\n'
        "[model_providers.proxyhub]\n"
        'name = "ProxyHub"\n'
        f'base_url = "{base_url.rstrip("/")}/v1"\n'
        'wire_api = "responses"\n'
        f'env_key = "{KEY_ENV}"\n'
        + (f"\n# Codex reads the key from the environment: in the shell it runs in,\n"
           f"# export {KEY_ENV}={api_key}\n" if api_key else "")
    )


FORMATS = {
    "factory": lambda url, models, key: factory_settings(url, models, key),
    "claude-code": lambda url, models, key: claude_code_env(url, models, key),
    "codex": lambda url, models, key: codex_config(url, models, key),
}
