"""A teammate logs in with a real browser, creates a key and downloads a config.

The test client skips CSRF checks; a browser does not (a no-referrer policy once
made every form post fail with "Origin checking failed - null").
"""
from __future__ import annotations

import pytest

from accounts.models import ApiKey
from tests.conftest import outside_the_browser_loop

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tina_key(api_key_factory):
    """Made before the browser starts: Playwright's running loop forbids sync queries in this thread."""
    api_key, _ = api_key_factory("tina", models=["claude-*"])
    api_key.user.set_password("pw-tina-123")
    api_key.user.save()
    return api_key


def test_teammate_logs_in_and_creates_a_key_in_a_browser(live_server, tina_key, chromium_page):
    api_key, page = tina_key, chromium_page
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "tina")
    page.fill("#id_password", "pw-tina-123")
    page.click("#login-form [type=submit]")
    assert page.url.endswith("/me/")
    assert api_key.prefix in page.content()

    page.fill("#id_name", "laptop")
    page.click("#create-key [type=submit]")
    assert "sk-ph-" in page.content()
    keys = outside_the_browser_loop(lambda: list(ApiKey.objects.filter(user__username="tina")))
    assert len(keys) == 2
