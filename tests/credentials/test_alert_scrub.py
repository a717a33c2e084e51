"""alerts.scrub(): token-shaped text never leaves in an alert, whatever an upstream put in an error message."""
from __future__ import annotations

import pytest

from credentials import alerts


@pytest.mark.parametrize("secret", [
    "sk-ant-oat01-" + "a" * 40,
    "Bearer abcdefghijklmnop",
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "rt-" + "Zx9" * 10,
    "Q" * 48,
])
def test_scrub_removes_token_shaped_text(secret):
    text = alerts.scrub(f"refresh failed: upstream said {secret} was bad")
    assert secret not in text and "[redacted]" in text and text.startswith("refresh failed: upstream said")


def test_scrub_keeps_a_keys_visible_prefix_and_plain_words():
    text = "key sk-ph-Ab3dE6… of alice@example.com: 401 authentication_error OAuth token has expired"
    assert alerts.scrub(text) == text
