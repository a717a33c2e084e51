"""The admin index's account panel keeps its shape with a long error, in Chromium at 1280x800.

It broke: the admin dashboard's CSS keeps table cells on one line (nowrap) and gives the
row header the rest (width 100%), so a long unbroken error pushed the table wider than its
column, squeezed the provider name to one letter per line and ran under "Recent actions".
"""
from __future__ import annotations

import os

import pytest

from credentials.models import Credential

pytestmark = pytest.mark.django_db(transaction=True)

LONG_ERROR = ("refresh failed: invalid_grant https://platform.claude.com/v1/oauth/token?" + "x" * 120
              + " and the upstream said: " + "refresh_token_reused " * 6)[:300]
SCREENSHOT = os.environ.get("PROXYHUB_TEST_SCREENSHOT_DIR", "")


@pytest.fixture
def broken_pool(django_user_model):
    """Made before the browser starts (Playwright's running loop forbids sync queries in this thread)."""
    django_user_model.objects.create_superuser("lead", "", "pw-lead-123")
    for n, provider in enumerate(["claude", "claude", "codex"]):
        Credential.objects.create(provider=provider, label=f"team-account-{n}@example.com", access_token="t",
                                  refresh_token="r", status=Credential.Status.NEEDS_RELOGIN,
                                  status_reason=LONG_ERROR)


def sign_in(page, url):
    page.goto(f"{url}/admin/login/?next=/admin/")
    page.fill("#id_username", "lead")
    page.fill("#id_password", "pw-lead-123")
    page.click("#login-form [type=submit]")
    page.wait_for_url("**/admin/overview/**")  # staff land on the Overview; the panel is on the index
    page.goto(f"{url}/admin/")
    page.wait_for_selector("#pool-health")


def test_a_long_error_neither_squeezes_the_provider_name_nor_runs_under_recent_actions(live_server, broken_pool,
                                                                                       chromium_page):
    page = chromium_page
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server.url)
    if SCREENSHOT:
        page.screenshot(path=os.path.join(SCREENSHOT, "admin-index-long-error.png"), full_page=True)
    sizes = page.evaluate("""() => {
        const box = el => el.getBoundingClientRect();
        const panel = document.querySelector('#pool-health');
        const names = [...panel.querySelectorAll('th[scope=row] a')].map(a => {
            const r = a.getClientRects();
            return {lines: r.length, height: box(a).height, lineHeight: parseFloat(getComputedStyle(a).lineHeight) || 20,
                    text: a.textContent};
        });
        const related = document.querySelector('#content-related');
        return {
            panelRight: box(panel).right, panelScroll: panel.scrollWidth, panelClient: panel.clientWidth,
            tableRight: box(panel.querySelector('table')).right,
            cells: [...panel.querySelectorAll('td')].map(td => ({right: box(td).right, scroll: td.scrollWidth,
                                                                 client: td.clientWidth})),
            relatedLeft: related ? box(related).left : null,
            names,
        };
    }""")
    # Each provider name is on one line: its link is one line box, no taller than a line and a half.
    for name in sizes["names"]:
        assert name["height"] <= name["lineHeight"] * 1.5, name
    # Nothing overflows the panel, and the panel ends before "Recent actions" starts.
    assert sizes["panelScroll"] <= sizes["panelClient"] + 1
    assert sizes["tableRight"] <= sizes["panelRight"] + 1
    for cell in sizes["cells"]:
        assert cell["scroll"] <= cell["client"] + 1 and cell["right"] <= sizes["panelRight"] + 1
    assert sizes["relatedLeft"] is not None and sizes["panelRight"] <= sizes["relatedLeft"]
    # The error is still shown, whole.
    assert LONG_ERROR[:60] in page.inner_text("#pool-health")
