"""Repeated failed sign-ins are throttled (django-axes), tried in a real browser against a live server.

After PROXYHUB_SIGNIN_FAILURE_LIMIT failures (5) the address and the username are
locked out for PROXYHUB_SIGNIN_LOCKOUT_MINUTES: a clear 429 page, the right
password included, on /me/ and on the admin login alike (it is the same address).
"""
from __future__ import annotations

import pytest

from credentials.models import AuditEntry
from tests.conftest import outside_the_browser_loop

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(django_user_model):
    """Made before the browser starts (Playwright's running loop forbids sync queries in this thread)."""
    django_user_model.objects.create_user("tina", password="pw-tina-123")
    django_user_model.objects.create_superuser("lead", "", "pw-lead-123")


def submit(page, url: str, username: str, password: str):
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation() as navigation:
        page.click("#login-form [type=submit]")
    return navigation.value


def test_five_failures_lock_the_address_and_the_username_out_with_a_clear_page(live_server, people, chromium_page,
                                                                                settings):
    page, me, admin = chromium_page, f"{live_server.url}/me/login/", f"{live_server.url}/admin/login/"
    assert settings.AXES_FAILURE_LIMIT == settings.PROXYHUB_SIGNIN_FAILURE_LIMIT == 5
    for attempt in range(1, 5):
        response = submit(page, me, "tina", f"wrong-{attempt}")
        assert response.status == 200 and "Please enter a correct username and password" in page.content()

    response = submit(page, me, "tina", "wrong-5")
    assert response.status == 429 and response.headers["retry-after"] == "900"
    assert "Too many failed sign-ins" in page.inner_text("h1")
    assert "Try again in 15 minutes" in page.inner_text("#locked-out")

    # Locked means locked: the right password, and the admin's door from the same address.
    assert submit(page, me, "tina", "pw-tina-123").status == 429
    assert submit(page, admin, "lead", "pw-lead-123").status == 429
    assert "Too many failed sign-ins" in page.content() and "ProxyHub administration" in page.content()

    trail = outside_the_browser_loop(lambda: list(AuditEntry.objects.order_by("id").values_list("action", "target")))
    assert trail.count(("signin_failed", "tina")) >= 5 and ("signin_locked", "tina") in trail
    assert ("signin", "tina") not in trail and ("signin", "lead") not in trail


def test_a_few_failures_then_the_right_password_signs_in(live_server, people, chromium_page):
    page, me = chromium_page, f"{live_server.url}/me/login/"
    for attempt in range(3):
        assert submit(page, me, "tina", f"wrong-{attempt}").status == 200
    submit(page, me, "tina", "pw-tina-123")
    assert page.url.endswith("/me/")
