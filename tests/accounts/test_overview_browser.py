"""The staff Overview in Chromium at 1280x800: it renders its charts and cards, a filter change updates the URL
and the numbers, and no page scrolls sideways."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey
from credentials.models import Credential

pytestmark = pytest.mark.django_db(transaction=True)
SCREENSHOT = os.environ.get("PROXYHUB_TEST_SCREENSHOT_DIR", "")


@pytest.fixture
def team(django_user_model, api_key_factory, usage_factory, priced_catalog):
    """Made before the browser starts (Playwright's running loop forbids sync queries in this thread)."""
    django_user_model.objects.create_superuser("lead", "", "pw-lead-123")
    now = timezone.now()
    keys = [api_key_factory(name, name=f"{name}-laptop")[0] for name in ("alice", "bob", "carol")]
    for day in range(7):
        for n, key in enumerate(keys):
            for _ in range(n + 1):
                usage_factory(key, "claude-sonnet-4-6" if n != 1 else "gpt-5.5", at=now - timedelta(days=day),
                              provider="codex" if n == 1 else "claude", input_tokens=1000 * (day + 1),
                              cache_read_tokens=4000 * n, output_tokens=300, duration_ms=2000 + 100 * day,
                              ttfb_ms=400, outcome="upstream_error" if day == 2 and n == 2 else "ok")
    reset = now + timedelta(days=2)
    Credential.objects.create(provider="claude", label="team-max@example.com", plan="max", groups=["core"],
                              access_token="t", refresh_token="r", windows={
                                  "5h": {"utilization": 0.35, "reset": (now + timedelta(hours=2)).timestamp()},
                                  "7d": {"utilization": 0.9, "reset": reset.timestamp()},
                                  "7d_opus": {"utilization": 0.4, "reset": reset.timestamp()}})
    Credential.objects.create(provider="claude", label="old-pro@example.com", plan="pro", access_token="t",
                              refresh_token="r", status=Credential.Status.NEEDS_RELOGIN,
                              status_reason="refresh failed: invalid_grant")
    Credential.objects.create(provider="codex", label="chatgpt-plus@example.com", plan="plus", access_token="t",
                              refresh_token="r", cooldown_until=now + timedelta(minutes=40))
    return {k.user.username: k for k in ApiKey.objects.select_related("user")}


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_overview_renders_filters_through_the_url_and_fits_the_screen(live_server, team, chromium_page):
    page = chromium_page
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "lead")
    page.fill("#id_password", "pw-lead-123")
    page.click("#login-form [type=submit]")
    page.wait_for_url("**/admin/overview/")  # staff land here
    assert page.locator(".ov-chart svg").count() == 6
    assert page.locator(".ov-card").count() == 3
    assert page.locator(".ov-card.relogin a.reconnect").count() == 1
    assert "runs out" in page.locator(".ov-card.ready").inner_text()
    all_requests = int(page.locator("#total-requests").get_attribute("data-value"))
    assert all_requests == 7 * (1 + 2 + 3)
    assert no_sideways_scroll(page)
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "overview-7d.png"), full_page=True)
        page.screenshot(path=os.path.join(SCREENSHOT, "overview-7d-fold.png"))

    # Choosing a user applies at once: the URL carries it and the numbers are that user's.
    bob = team["bob"]
    page.select_option("select[name=user]", str(bob.user_id))
    page.wait_for_url(f"**/admin/overview/?*user={bob.user_id}*")
    assert "period=7d" in page.url
    assert int(page.locator("#total-requests").get_attribute("data-value")) == 7 * 2
    assert page.locator("select[name=user]").input_value() == str(bob.user_id)
    # Then a preset: still bob, now 24 hours, per hour.
    page.select_option("select[name=period]", "24h")
    page.wait_for_url("**period=24h**")
    assert f"user={bob.user_id}" in page.url
    assert int(page.locator("#total-requests").get_attribute("data-value")) == 2
    assert "per hour" in page.locator("#overview-range").inner_text()
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "overview-24h-bob.png"), full_page=True)
    assert no_sideways_scroll(page)

    # Custom dates: both days set, the page reloads with them (and per hour for a two-day range).
    first = (timezone.now() - timedelta(days=3)).date().isoformat()
    second = (timezone.now() - timedelta(days=2)).date().isoformat()
    page.fill("input[name=from]", first)
    page.fill("input[name=to]", second)
    page.wait_for_url(f"**from={first}**")
    assert f"to={second}" in page.url and f"user={bob.user_id}" in page.url
    assert int(page.locator("#total-requests").get_attribute("data-value")) == 2 * 2
    assert page.locator("select[name=period]").input_value() == "custom"

    # A bar of the requests chart opens its records.
    page.goto(f"{live_server.url}/admin/overview/?period=7d")
    if SCREENSHOT:
        page.emulate_media(color_scheme="dark")
        page.screenshot(path=os.path.join(SCREENSHOT, "overview-7d-dark.png"))
        page.emulate_media(color_scheme="light")
    last_bar = page.locator("#chart-requests svg a").last
    last_bar.click()
    page.wait_for_url("**/admin/gateway/usagerecord/?**")
    assert "created_at__gte" in page.url
    assert page.locator("#result_list tbody tr").count() == 6
    assert no_sideways_scroll(page)
