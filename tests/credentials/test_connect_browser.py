"""A real browser completes the Claude wizard in the admin of a live server.

Drives Debian's /usr/bin/chromium through Playwright (no browser download);
skipped when either is missing. CI: `apt-get install -y chromium` and
`pip install playwright` (requirements.txt).
"""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from credentials.models import Credential
from tests.conftest import outside_the_browser_loop
from tests.credentials.conftest import approve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def superuser(transactional_db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-browser")


@pytest.fixture
def browser_page(superuser, chromium_page):
    return chromium_page


def test_admin_connects_a_claude_account_in_a_browser(live_server, oauth, browser_page):
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/?next=/admin/credentials/credential/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-browser")
    page.click("input[type=submit]")
    page.click("text=Connect Claude account")

    url = page.input_value("#authorize-url")
    assert page.get_attribute("#authorize-link", "href") == url
    page.fill("#id_pasted", approve(oauth, "claude", url, email="browser@example.com"))
    page.fill("#id_label", "From the browser")
    page.click("input[name=_connect]")

    message = page.text_content(".messagelist .success")
    assert message.startswith("Connected browser@example.com (Claude")
    credential = outside_the_browser_loop(Credential.objects.get)
    assert credential.label == "From the browser"
    assert credential.access_token not in page.content()
