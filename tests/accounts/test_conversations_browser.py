"""The conversations tables in Chromium at 1280x800: staff's /admin/usage/?by=conversation and a teammate's
/me/usage/ fit the screen without scrolling sideways, show a long conversation id shortened with the whole
one on hover (its title), and the teammate's page holds none of another teammate's conversations."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = os.environ.get("PROXYHUB_TEST_SCREENSHOT_DIR", "")
SESSION = "9b2e6f0c-4d1a-4c3e-8f7a-2b5d9e1c0a64"  # a Claude Code session id
LONG = "user_4f3a9c2b7e1d_account__session_" + "7" * 29  # 64 characters, the column's length


@pytest.fixture
def team(api_key_factory, django_user_model, priced_catalog):
    """Made before the browser starts: Playwright's running loop forbids sync queries in this thread."""
    from gateway.usage.rows import UsageRow
    from gateway.usage.store import write_rows

    django_user_model.objects.create_superuser("lead", "", "pw-lead-123")
    laptop, _ = api_key_factory("tina", name="laptop")
    laptop.user.set_password("pw-tina-123")
    laptop.user.save()
    ci, _ = api_key_factory("tina", name="ci")
    bobs, _ = api_key_factory("bob", name="desk")
    now = timezone.now()
    rows = []
    for n, (key, conv, model) in enumerate([(laptop, SESSION, "claude-sonnet-4-6"), (ci, LONG, "gpt-5.5"),
                                            (bobs, "bobs-secret-session", "claude-sonnet-4-6(high)")]):
        for turn in range(6):
            rows.append(UsageRow(
                endpoint="messages", created_at=now - timedelta(hours=n * 5, minutes=60 - turn * 9),
                api_key_id=key.pk, user_id=key.user_id, key_prefix=key.prefix, requested_model=model,
                provider="codex" if model.startswith("gpt") else "claude", status_code=200, conversation=conv,
                input_tokens=300 + 40 * turn, cache_read_tokens=0 if turn == 0 else 18000 + 2500 * turn,
                cache_write_tokens=18000 if turn == 0 else 2500, output_tokens=600))
    rows.append(UsageRow(endpoint="chat_completions", api_key_id=laptop.pk, user_id=laptop.user_id,
                         key_prefix=laptop.prefix, requested_model="claude-sonnet-4-6", input_tokens=900))
    write_rows(rows)
    return {"laptop": laptop, "ci": ci, "bob": bobs}


def sign_in(page, url, username, password, landing):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{url}/admin/login/" if username == "lead" else f"{url}/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    page.wait_for_url(landing)


def no_sideways_scroll(page):
    width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], width


def test_staff_see_every_conversation_with_its_hit_rate(live_server, team, chromium_page):
    page = chromium_page
    sign_in(page, live_server.url, "lead", "pw-lead-123", "**/admin/overview/")
    page.goto(f"{live_server.url}/admin/usage/?period=7d")
    page.click("#groups >> text=conversation")
    page.wait_for_selector("#conversation-table")
    assert "by=conversation" in page.url
    rows = page.locator("#conversation-table tbody tr")
    assert rows.count() == 3
    long_id = page.locator(f'#conversation-table code[title="{LONG}"]')
    assert long_id.inner_text() == LONG[:12] + "…"
    assert page.locator('#conversation-table code[title="bobs-secret-session"]').count() == 1
    no_sideways_scroll(page)
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "h5_admin_conversations.png"), full_page=True)
    page.click("#orders >> text=costing most")
    page.wait_for_url("**order=cost**")
    assert page.locator("#conversation-table tbody tr").first.locator("code").first.get_attribute("title") in (
        SESSION, "bobs-secret-session")  # the priced Sonnet ones before unpriced GPT
    page.goto(f"{live_server.url}/admin/usage/?by=key&period=7d")
    assert "cache hit" in page.locator("#usage-table thead").inner_text().lower()
    no_sideways_scroll(page)
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "h5_admin_usage_by_key.png"), full_page=True)


def test_a_teammate_sees_their_own_conversations(live_server, team, chromium_page):
    page = chromium_page
    sign_in(page, live_server.url, "tina", "pw-tina-123", "**/me/")
    page.goto(f"{live_server.url}/me/usage/?period=7d")
    table = page.locator("#conversations")
    table.scroll_into_view_if_needed()
    assert table.locator("tbody tr").count() == 2
    assert table.locator(f'code[title="{LONG}"]').inner_text() == LONG[:12] + "…"
    assert "bobs-secret-session" not in page.content()
    no_sideways_scroll(page)
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "h5_me_usage_conversations.png"), full_page=True)
        page.screenshot(path=os.path.join(SCREENSHOT, "h5_me_usage_conversations_fold.png"))
