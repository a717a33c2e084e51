"""In Debian's Chromium at 1280x800: issuing a key, copying it and a config (Clipboard API, and the
selection fallback of plain http), and Check showing per-model results in place; /me/ and the admin."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import ApiKey
from tests.conftest import outside_the_browser_loop, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path("/tmp/proxyhub-screens")


@pytest.fixture
def world(gateway: str, settings: Any, credential_factory: Any, api_key_factory: Any,
          django_user_model: Any) -> dict[str, Any]:
    """Made before the browser starts (Playwright's running loop forbids sync queries in this thread)."""
    settings.PROXYHUB_PUBLIC_URL = gateway
    credential_factory("claude")  # no ChatGPT account: gpt-5.5 fails its check
    api_key, _ = api_key_factory("tina", models=["claude-sonnet-4-6", "gpt-5.5"])
    api_key.user.set_password("pw-tina-123")
    api_key.user.save()
    django_user_model.objects.create_superuser("root", "", "pw-root-123")
    return {"key": api_key, "gateway": gateway}


def open_page(page: Any, url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"{page.url} scrolls sideways: {width}px"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def check_results(page: Any) -> dict[str, str]:
    page.wait_for_selector(".check-table tbody tr")
    rows = page.locator(".check-table tbody tr")
    return {rows.nth(i).get_attribute("data-model"): rows.nth(i).get_attribute("class")
            for i in range(rows.count())}


def test_teammate_issues_copies_and_checks_a_key(live_server: Any, world: dict[str, Any], chromium_page: Any) -> None:
    page = chromium_page
    open_page(page, live_server.url)
    page.goto(f"{live_server.url}/me/login/")
    page.fill("#id_username", "tina")
    page.fill("#id_password", "pw-tina-123")
    page.click("#login-form [type=submit]")
    page.fill("#id_name", "laptop")
    page.check("input[value='gpt-5.5']")
    page.check("input[value='claude-sonnet-4-6']")
    page.click("#create-key [type=submit]")
    raw = page.text_content("#raw-key").strip()
    assert raw.startswith("sk-ph-")

    # localhost is a secure context: the Clipboard API.
    page.click("#copy-raw-key")
    assert page.evaluate("navigator.clipboard.readText()") == raw
    assert page.text_content("#copy-raw-key") == "Copied"
    # Plain http elsewhere is not: the text is selected for Ctrl+C instead.
    page.evaluate("Object.defineProperty(window, 'isSecureContext', {value: false})")
    page.click("button[data-copy='config-text-factory']")
    selected = page.evaluate("window.getSelection().toString()")
    assert raw in selected and '"customModels"' in selected
    assert "Ctrl+C" in page.text_content("button[data-copy='config-text-factory']")

    page.click("#check-button")
    results = check_results(page)
    assert results == {"claude-sonnet-4-6": "check-ok", "gpt-5.5": "check-fail"}
    assert "No ready account" in page.text_content("tr.check-fail")
    assert page.text_content("#raw-key").strip() == raw  # the key is still on the page
    no_sideways_scroll(page)
    shot(page, "key-created-me")

    # An existing key: the key list's Check, then the key pasted.
    page.goto(f"{live_server.url}/me/")
    no_sideways_scroll(page)
    shot(page, "key-list-me")
    new = outside_the_browser_loop(lambda: ApiKey.objects.get(user__username="tina", name="laptop"))
    page.click(f"#key-{new.pk} a.button:has-text('Check')")
    page.fill("#check-key", raw)
    page.click("#check-button")
    assert check_results(page)["claude-sonnet-4-6"] == "check-ok"
    no_sideways_scroll(page)
    shot(page, "key-check-me")
    records = outside_the_browser_loop(lambda: wait_for_usage(4))
    assert len(records) == 4 and all(r.is_check for r in records)


def test_admin_issues_a_key_and_checks_it(live_server: Any, world: dict[str, Any], chromium_page: Any) -> None:
    page = chromium_page
    open_page(page, live_server.url)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root-123")
    page.click("#login-form [type=submit]")
    page.goto(f"{live_server.url}/admin/accounts/apikey/add/")
    page.fill("#id_user", str(world["key"].user_id))
    page.fill("#id_name", "ci")
    page.fill("#id_allowed_models", "claude-sonnet-4-6")
    page.click("input[name=_save]")
    raw = page.text_content("#raw-key").strip()
    assert raw.startswith("sk-ph-")
    page.click("#copy-raw-key")
    assert page.evaluate("navigator.clipboard.readText()") == raw
    page.click("button[data-copy='config-text-claude-code']")
    assert raw in page.evaluate("navigator.clipboard.readText()")
    page.click("#check-button")
    assert check_results(page) == {"claude-sonnet-4-6": "check-ok"}
    no_sideways_scroll(page)
    shot(page, "key-created-admin")


def test_admin_key_list_copies_a_prefix_without_opening_the_key(live_server: Any, world: dict[str, Any],
                                                                 chromium_page: Any) -> None:
    page, api_key = chromium_page, world["key"]
    open_page(page, live_server.url)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/accounts/apikey/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root-123")
    page.click("#login-form [type=submit]")
    listing = page.url
    page.click(f"button[data-copy='prefix-{api_key.pk}']")
    assert page.evaluate("navigator.clipboard.readText()") == api_key.prefix
    assert page.url == listing  # the button sits in the change link: it must not follow it
    no_sideways_scroll(page)
    shot(page, "key-list-admin")
