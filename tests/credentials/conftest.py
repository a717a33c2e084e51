"""Helpers for the connect wizard tests: reading the shown authorize URL, approving on the fake."""
from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from tests.fakes import FakeUpstreams

AUTHORIZE_URL = re.compile(r'<textarea id="authorize-url"[^>]*>([^<]+)</textarea>')


@pytest.fixture
def oauth(fake: FakeUpstreams) -> Iterator[FakeUpstreams]:
    """The fake token endpoints with no faults or records left by earlier tests."""
    fake.reset()
    yield fake
    fake.reset()


def start_url(provider: str) -> str:
    return reverse("admin:credentials_connect_start", kwargs={"provider": provider})


def shown_authorize_url(page: str) -> str:
    match = AUTHORIZE_URL.search(page)
    assert match, "no authorize URL on the page"
    return html.unescape(match.group(1))


def authorize_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def approve(fake: FakeUpstreams, provider: str, authorize_url: str, **identity: Any) -> str:
    """Simulate the admin approving on the provider's page; returns what they would paste."""
    q = authorize_params(authorize_url)
    if provider == "claude":
        code = fake.authorize_claude(q["code_challenge"], q["state"], q["redirect_uri"], **identity)
        return f"{code}#{q['state']}"
    code = fake.authorize_codex(q["code_challenge"], q["state"], q["redirect_uri"], **identity)
    return f"{q['redirect_uri']}?code={code}&scope=openid+profile+email+offline_access&state={q['state']}"
