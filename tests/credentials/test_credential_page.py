"""The credential's admin page (issue 9): gauges and plain dates instead of JSON, buttons, no internal fields."""
from __future__ import annotations

import time
from datetime import datetime, timezone as dt_timezone

import pytest
from django.utils import timezone

from credentials.window_display import duration_text, gauges

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "", "pw"))
    return client


def page_url(credential) -> str:
    return f"/admin/credentials/credential/{credential.pk}/change/"


def test_windows_are_gauges_with_dates_and_internal_fields_are_hidden(admin_client, credential_factory):
    reset = time.time() + 3 * 3600 + 630  # 3 h 10 min and a half: robust to a slow test
    credential = credential_factory(windows={"5h": {"utilization": 0.42, "reset": reset},
                                             "7d_opus": {"utilization": 0.97, "reset": reset + 86400}},
                                    token_version=7, refresh_lock_until=timezone.now(),
                                    windows_polled_at=timezone.now())
    page = admin_client.get(page_url(credential)).content.decode()
    assert 'data-window="5h"' in page and "5-hour" in page and ">42%<" in page and "in 3 h 10 min" in page
    assert "Weekly (opus)" in page and "level-full" in page
    resets = datetime.fromtimestamp(reset, tz=dt_timezone.utc)
    assert f'datetime="{resets:%Y-%m-%dT%H:%M}' in page and f"{resets:%a %-d %b, %H:%M} UTC" in page
    assert "utilization" not in page and str(int(reset)) not in page
    for internal in ("token_version", "refresh_lock_until", "windows_polled_at", 'name="windows"'):
        assert internal not in page, internal
    for secret in (credential.access_token, credential.refresh_token):
        assert secret not in page


def test_buttons_run_the_actions_on_this_account_only(admin_client, credential_factory):
    one, other = credential_factory(), credential_factory()
    page = admin_client.get(page_url(one)).content.decode()
    assert 'value="Refresh tokens"' in page and 'value="Test"' in page and 'value="Disable"' in page
    assert 'id="reconnect"' in page and 'value="Enable"' not in page
    response = admin_client.post(f"/admin/credentials/credential/{one.pk}/run/disable/", follow=True)
    assert response.redirect_chain[-1][0] == page_url(one)
    one.refresh_from_db(), other.refresh_from_db()
    assert one.status == "disabled" and other.status == "active"
    assert 'value="Enable"' in response.content.decode()
    admin_client.post(f"/admin/credentials/credential/{one.pk}/run/enable/")
    one.refresh_from_db()
    assert one.status == "active"


def test_the_run_url_takes_only_posts_of_known_actions_from_staff(admin_client, client, credential_factory,
                                                                  django_user_model):
    credential = credential_factory()
    assert admin_client.get(f"/admin/credentials/credential/{credential.pk}/run/disable/").status_code == 405
    assert admin_client.post(f"/admin/credentials/credential/{credential.pk}/run/delete_selected/").status_code == 404
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(viewer)
    assert client.post(f"/admin/credentials/credential/{credential.pk}/run/disable/").status_code == 403
    credential.refresh_from_db()
    assert credential.status == "active"


def test_a_window_past_its_reset_shows_refilled_and_the_rest_their_remaining_time():
    now = datetime(2026, 1, 1, 12, tzinfo=dt_timezone.utc)
    shown = gauges({"5h": {"utilization": 0.9, "reset": now.timestamp() - 1},
                    "7d": {"utilization": 0.5, "reset": now.timestamp() + 90000}}, now)
    # A window whose reset has passed has refilled; the other shows its remaining time.
    assert [(g["name"], g["used_percent"], g["resets_in"]) for g in shown] == [("5h", 0.0, ""), ("7d", 50.0, "1 d 1 h")]
    assert duration_text(59) == "1 min" and duration_text(0) == "now"
    assert duration_text(3 * 3600 + 300) == "3 h 05 min"
