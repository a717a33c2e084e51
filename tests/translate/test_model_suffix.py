"""Thinking levels given in the model name (CLIProxyAPI's ``model(level)``)."""
from __future__ import annotations

import pytest

from gateway.translate import model_suffix
from gateway.translate.errors import TranslationError


def test_split_model_takes_the_suffix_off():
    assert model_suffix.split_model("claude-sonnet-4-6(High)") == ("claude-sonnet-4-6", "high")
    assert model_suffix.split_model("gpt-5.5(16000)") == ("gpt-5.5", "16000")
    assert model_suffix.split_model("gpt-5.5") == ("gpt-5.5", "")
    assert model_suffix.split_model("gpt-5.5()") == ("gpt-5.5", "")


def test_unknown_levels_are_a_400():
    with pytest.raises(TranslationError):
        model_suffix.validate("turbo")
    model_suffix.validate("xhigh")
    model_suffix.validate("2048")


def test_codex_gets_the_level_as_reasoning_effort():
    body = {"model": "gpt-5.5", "reasoning": {"effort": "low", "summary": "auto"}}
    assert model_suffix.apply(body, "high", upstream_format="responses", adaptive=False)["reasoning"] == {
        "effort": "high", "summary": "auto"}
    assert model_suffix.apply(body, "30000", upstream_format="responses", adaptive=False)["reasoning"]["effort"] == "xhigh"
    assert model_suffix.apply(body, "auto", upstream_format="responses", adaptive=False) is body


def test_claude_gets_a_budget_or_adaptive_effort():
    body = {"model": "m", "max_tokens": 4000, "messages": []}
    manual = model_suffix.apply(body, "high", upstream_format="anthropic", adaptive=False)
    assert manual["thinking"] == {"type": "enabled", "budget_tokens": 24576} and manual["max_tokens"] == 25600
    adaptive = model_suffix.apply(body, "xhigh", upstream_format="anthropic", adaptive=True)
    assert adaptive["thinking"] == {"type": "adaptive"} and adaptive["output_config"] == {"effort": "max"}
    off = model_suffix.apply({**adaptive}, "none", upstream_format="anthropic", adaptive=True)
    assert "thinking" not in off and "output_config" not in off
    small = model_suffix.apply(body, "100", upstream_format="anthropic", adaptive=True)
    assert small["thinking"] == {"type": "enabled", "budget_tokens": 1024}
