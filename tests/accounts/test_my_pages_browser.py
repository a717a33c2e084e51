"""A teammate's /me/ pages in Chromium at 1280x800 (issue 9): their usage with charts and a range picker,
their keys with limits and copy buttons; nothing of anyone else's, and no page scrolls sideways."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = os.environ.get("PROXYHUB_TEST_SCREENSHOT_DIR", "")


@pytest.fixture
def tina(api_key_factory, priced_catalog):
    """Made before the browser starts: Playwright's running loop forbids sync queries in this thread."""
    from gateway.usage.rows import UsageRow
    from gateway.usage.store import write_rows

    laptop, _ = api_key_factory("tina", models=["claude-*", "gpt-5.5"], name="laptop")
    laptop.daily_token_limit, laptop.pool_share_percent = 2_000_000, 40
    laptop.save()
    bobs, _ = api_key_factory("bob", name="bobs-secret-project")
    laptop.user.set_password("pw-tina-123")
    laptop.user.save()
    now = timezone.now()
    rows = [UsageRow(endpoint="messages", created_at=now - timedelta(days=d, hours=h), api_key_id=laptop.pk,
                     user_id=laptop.user_id, key_prefix=laptop.prefix, provider="claude",
                     requested_model="claude-sonnet-4-6(high)" if h % 2 else "claude-sonnet-4-6",
                     status_code=200, input_tokens=1200 * (d + 1), cache_read_tokens=30000, output_tokens=400,
                     duration_ms=2400, ttfb_ms=600)
            for d in range(0, 12) for h in range(3)]
    rows.append(UsageRow(endpoint="messages", api_key_id=bobs.pk, user_id=bobs.user_id, key_prefix=bobs.prefix,
                         provider="codex", requested_model="gpt-5.4", status_code=200, input_tokens=777777))
    write_rows(rows)
    return {"laptop": laptop, "bob": bobs}


def sign_in(page, url):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{url}/")
    page.fill("#id_username", "tina")
    page.fill("#id_password", "pw-tina-123")
    page.click("#login-form [type=submit]")
    page.wait_for_url("**/me/")


def no_sideways_scroll(page):
    width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], width


def test_my_usage_has_charts_a_range_picker_and_only_my_rows(live_server, tina, chromium_page):
    page = chromium_page
    sign_in(page, live_server.url)
    page.click("text=My usage")
    page.wait_for_selector("#chart-requests svg")
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "me-usage-30d.png"), full_page=True)
    no_sideways_scroll(page)
    text = page.inner_text("main")
    assert "777777" not in text and "gpt-5.4" not in text and tina["bob"].prefix not in text
    assert "bobs-secret-project" not in page.content()
    # model(level) is counted with its model: one row for Sonnet.
    models = page.eval_on_selector_all("#by-model tbody td.name", "tds => tds.map(td => td.innerText)")
    assert models == ["claude-sonnet-4-6"]
    assert page.inner_text("#total-requests") == "36"
    # Every chart is drawn to scale: the tallest bar of the requests chart is three requests high.
    bars = page.eval_on_selector_all("#chart-requests rect.s-ok", "rs => rs.map(r => r.getBBox().height)")
    assert len(bars) == 12 and max(bars) > 0 and abs(max(bars) - min(bars)) < 0.5
    cost = page.inner_text("#total-cost")
    assert cost.startswith("$") and cost != "$0.00"

    page.click("#periods >> text=7d")
    page.wait_for_url("**period=7d**")
    assert page.inner_text("#total-requests") == "21"
    page.fill("#from", (timezone.now() - timedelta(days=1)).date().isoformat())
    page.fill("#to", timezone.now().date().isoformat())
    page.click("#usage-range [type=submit]")
    page.wait_for_url("**from=**")
    assert page.inner_text("#total-requests") == "6" and "per hour" in page.inner_text("#usage-span")
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "me-usage-two-days.png"), full_page=True)
    no_sideways_scroll(page)


def test_my_keys_show_limits_and_copy_buttons_without_sideways_scroll(live_server, tina, chromium_page):
    page = chromium_page
    sign_in(page, live_server.url)
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "me-keys.png"), full_page=True)
    no_sideways_scroll(page)
    assert tina["laptop"].prefix in page.inner_text("#keys")
    assert tina["bob"].prefix not in page.content()
    assert page.query_selector(f"#keys button.copy[data-copy='prefix-{tina['laptop'].pk}']") is not None
    assert page.query_selector(f"#limits-{tina['laptop'].pk}") is not None
    limits = page.inner_text(f"#limits-{tina['laptop'].pk}")
    assert "Fair share" in limits and "40%" in limits
    # The daily limit's use is a gauge drawn to its percent (4,800 of 2,000,000 tokens: 0 %).
    gauge = page.query_selector(f"#limits-{tina['laptop'].pk} .limit-gauge")
    assert gauge is not None and gauge.get_attribute("aria-valuenow") == "0"
    page.click(f"#key-{tina['laptop'].pk} >> text=Configs")
    page.wait_for_selector("button.copy")
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "me-key-configs.png"), full_page=True)
    no_sideways_scroll(page)
