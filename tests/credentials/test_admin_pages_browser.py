"""The credential page and every admin list, in Chromium at 1280x800 with long errors (issue 9).

A team lead reads these on a laptop: no list may scroll sideways, and the column they need
(the last error above all) must be on the screen, not pushed past its right edge.
"""
from __future__ import annotations

import os
import time

import pytest
from django.utils import timezone

from tests.conftest import outside_the_browser_loop

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = os.environ.get("PROXYHUB_TEST_SCREENSHOT_DIR", "")
LONG_ERROR = ("refresh failed: invalid_grant https://platform.claude.com/v1/oauth/token?" + "x" * 140
              + " and the upstream said: " + "refresh_token_reused " * 12)[:480]


@pytest.fixture
def world(django_user_model, credential_factory, api_key_factory):
    """Made before the browser starts (Playwright's running loop forbids sync queries in this thread)."""
    from credentials.models import AlertEvent, AuditEntry, Credential
    from gateway.usage.rows import UsageRow
    from gateway.usage.store import write_rows

    django_user_model.objects.create_superuser("lead", "", "pw-lead-123")
    reset = time.time() + 2 * 3600
    ready = credential_factory(email="core-team-primary-account@example.com", plan="max",
                               windows={"5h": {"utilization": 0.42, "reset": reset},
                                        "7d": {"utilization": 0.81, "reset": reset + 3 * 86400},
                                        "7d_opus": {"utilization": 0.97, "reset": reset + 3 * 86400}},
                               last_error=LONG_ERROR, last_error_at=timezone.now())
    broken = credential_factory("codex", status=Credential.Status.NEEDS_RELOGIN, status_reason=LONG_ERROR[:300],
                                last_error=LONG_ERROR, last_error_at=timezone.now())
    key, _ = api_key_factory("alice-with-a-rather-long-username", models=["claude-*", "gpt-5.5", "claude-opus-4-5"],
                             name="laptop key for the long-running refactoring agent")
    write_rows([UsageRow(endpoint="messages", api_key_id=key.pk, user_id=key.user_id, key_prefix=key.prefix,
                         credential_id=ready.pk, provider="claude", requested_model="claude-opus-4-5-20251101(16000)",
                         upstream_model="claude-opus-4-5-20251101", status_code=529, outcome="upstream_error",
                         error_type="overloaded_error", input_tokens=123456, cache_read_tokens=9876543,
                         cache_write_tokens=123456, output_tokens=65432, duration_ms=123456, ttfb_ms=4567)])
    AlertEvent.objects.create(event="credential_needs_relogin", episode="relogin:" + "y" * 150, provider="codex",
                              credential=str(broken), credential_id=broken.pk, detail=LONG_ERROR,
                              text=LONG_ERROR, last_error=LONG_ERROR[:300])
    AuditEntry.objects.create(actor="lead", action="credential.refresh_failed", target_type="credential",
                              target_id=str(broken.pk), target=str(broken),
                              detail={"reason": LONG_ERROR, "outcome": "needs re-login"})
    return {"ready": ready, "broken": broken}


def sign_in(page, url):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{url}/admin/login/?next=/admin/")
    page.fill("#id_username", "lead")
    page.fill("#id_password", "pw-lead-123")
    page.click("#login-form [type=submit]")
    page.wait_for_selector("#content")


def shot(page, name):
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, name), full_page=True)


FITS = """(column) => {
    const doc = document.documentElement;
    const cells = [...document.querySelectorAll('#result_list td.field-' + column + ', #result_list th.field-' + column)];
    return {scroll: doc.scrollWidth, client: doc.clientWidth,
            results: (() => { const r = document.querySelector('#changelist .results');
                              return r ? [r.scrollWidth, r.clientWidth] : null; })(),
            cells: cells.map(c => ({left: c.getBoundingClientRect().left, right: c.getBoundingClientRect().right,
                                    text: c.innerText}))};
}"""


@pytest.mark.parametrize("path, column, name", [
    ("/admin/credentials/credential/", "last_error_text", "credentials"),
    ("/admin/accounts/apikey/", "name", "api-keys"),
    ("/admin/gateway/usagerecord/", "status", "usage-records"),
    ("/admin/credentials/alertevent/", "detail", "alert-history"),
    ("/admin/credentials/auditentry/", "changes", "audit-log"),
])
def test_no_admin_list_scrolls_sideways_and_the_needed_column_is_on_screen(live_server, world, chromium_page,
                                                                            path, column, name):
    page = chromium_page
    sign_in(page, live_server.url)
    page.goto(live_server.url + path)
    page.wait_for_selector("#result_list")
    shot(page, f"list-{name}.png")
    sizes = page.evaluate(FITS, column)
    assert sizes["scroll"] <= sizes["client"], sizes
    assert sizes["results"] is None or sizes["results"][0] <= sizes["results"][1] + 1, sizes
    assert sizes["cells"], f"no {column} column on {path}"
    for cell in sizes["cells"]:
        assert 0 <= cell["left"] and cell["right"] <= sizes["client"], cell


def test_the_credentials_list_shows_the_error_and_gauges_not_json(live_server, world, chromium_page):
    page = chromium_page
    sign_in(page, live_server.url)
    page.goto(live_server.url + "/admin/credentials/credential/")
    text = page.inner_text("#result_list")
    assert LONG_ERROR[:60] in text and "Needs re-login" in text
    assert "utilization" not in text and "7d opus" in text and "97%" in text
    headings = page.eval_on_selector_all("#result_list thead th", "ths => ths.map(t => t.textContent.trim())")
    assert "Last error" in headings and "Requests 24 h" in headings and "Account" in headings


def test_the_credential_page_shows_gauges_dates_and_buttons_and_no_internal_fields(live_server, world,
                                                                                  chromium_page):
    page = chromium_page
    ready = world["ready"]
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/credentials/credential/{ready.pk}/change/")
    page.wait_for_selector("#credential-panel")
    shot(page, "credential-page.png")
    gauges = page.eval_on_selector_all(
        "#credential-windows .window-gauge",
        "els => els.map(e => ({name: e.dataset.window, text: e.innerText,"
        " width: e.querySelector('.gauge-fill').getBoundingClientRect().width,"
        " track: e.querySelector('.gauge').getBoundingClientRect().width}))")
    assert [g["name"] for g in gauges] == ["5h", "7d", "7d_opus"]
    assert "5-hour" in gauges[0]["text"] and "42%" in gauges[0]["text"] and "resets" in gauges[0]["text"]
    assert "Weekly (opus)" in gauges[2]["text"] and "97%" in gauges[2]["text"]
    # The bars are drawn to scale: 42 % of the track, and the fuller window's bar is longer.
    assert abs(gauges[0]["width"] / gauges[0]["track"] - 0.42) < 0.03
    assert gauges[2]["width"] > gauges[1]["width"] > gauges[0]["width"]
    body = page.inner_text("#content")
    assert "utilization" not in body and "reset\": 1" not in body
    for internal in ("token_version", "refresh_lock_until", "windows_polled_at", "windows"):
        assert page.query_selector(f"#id_{internal}, .field-{internal}") is None, internal
    assert "Token version" not in body and "Refresh lock" not in body
    doc = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert doc[0] <= doc[1]
    buttons = page.eval_on_selector_all("#credential-actions input[type=submit], #credential-actions a",
                                        "els => els.map(e => e.value || e.innerText)")
    assert buttons == ["Refresh tokens", "Test", "Disable", "Reconnect"]

    page.click("#credential-actions input[value=Disable]")
    page.wait_for_selector("#credential-state")
    assert page.inner_text("#credential-state").startswith("Disabled")
    assert "Disabled 1 credential" in page.inner_text(".messagelist")
    shot(page, "credential-page-disabled.png")
    status = outside_the_browser_loop(lambda: type(ready).objects.get(pk=ready.pk).status)
    assert status == "disabled"
    page.click("#credential-actions input[value=Enable]")
    page.wait_for_selector("#credential-actions input[value=Disable]")
    assert page.inner_text("#credential-state") == "Ready"


def test_a_broken_account_offers_reconnect_first(live_server, world, chromium_page):
    page = chromium_page
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/credentials/credential/{world['broken'].pk}/change/")
    page.wait_for_selector("#credential-panel")
    shot(page, "credential-page-needs-relogin.png")
    assert page.inner_text("#credential-state").startswith("Needs re-login")
    assert "default" in page.get_attribute("#reconnect", "class")
    page.click("#reconnect")
    page.wait_for_selector("#authorize-link")
    assert "/connect/login/" in page.url


def test_the_credential_page_follows_dark_mode(live_server, world, chromium_page):
    page = chromium_page
    page.emulate_media(color_scheme="dark")
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/credentials/credential/{world['ready'].pk}/change/")
    page.wait_for_selector("#credential-panel")
    shot(page, "credential-page-dark.png")
    # The panel takes the admin's own colours (its CSS variables), so it is dark with light text.
    colours = page.evaluate("""() => { const s = getComputedStyle(document.querySelector('#credential-panel'));
        const rgb = c => c.match(/\\d+/g).slice(0, 3).map(Number);
        return {bg: rgb(s.backgroundColor), fg: rgb(getComputedStyle(document.querySelector('#credential-state')).color)}; }""")
    assert sum(colours["bg"]) < 3 * 100 and sum(colours["fg"]) > 3 * 150, colours
