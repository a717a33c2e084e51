"""Optional TOTP two-factor for staff (django-otp), through the admin's real login form (Test Client).

Staff with a confirmed TOTP device must give its current code at the admin login;
staff without one sign in with a password alone; a staff session that skipped the
code (signed in at /me/) is sent back to the admin login.
"""
from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from credentials.models import AuditEntry

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password="ops-pw-2468", is_staff=True, is_superuser=True)


@pytest.fixture
def device(staff) -> TOTPDevice:
    return TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def sign_in(client: Client, code: str | None = None, password: str = "ops-pw-2468"):
    data = {"username": "ops", "password": password, "next": "/admin/"}
    if code is not None:
        data["otp_token"] = code
    return client.post(LOGIN, data)


def test_staff_with_a_device_must_give_the_current_code(device, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp would make us wait after the wrong code
    client = Client()
    page = client.get(LOGIN).content.decode()
    assert 'name="otp_token"' in page and "Authenticator code" in page

    for code in (None, "000000" if current_code(device) != "000000" else "111111"):
        response = sign_in(client, code)
        assert response.status_code == 200
        assert "enter the current code from your authenticator app" in response.content.decode()
        assert "_auth_user_id" not in client.session

    response = sign_in(client, current_code(device))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    failed = AuditEntry.objects.filter(action="signin_failed", target="ops")
    assert failed.count() == 2 and all("authenticator" in e.detail.get("reason", "") for e in failed)
    assert AuditEntry.objects.filter(action="signin", target="ops").count() == 1


def test_a_code_works_only_with_the_right_password(device):
    response = sign_in(Client(), current_code(device), password="not-the-password")
    assert response.status_code == 200 and "Please enter the correct username and password" in response.content.decode()


def test_staff_without_a_device_sign_in_with_a_password_alone(staff):
    client = Client()
    response = sign_in(client)
    assert response.status_code == 302 and client.get("/admin/").status_code == 200


def test_a_staff_session_from_the_teammate_login_must_still_give_the_code_for_the_admin(device):
    client = Client()
    response = client.post("/me/login/", {"username": "ops", "password": "ops-pw-2468"})
    assert response.status_code == 302 and client.get("/me/").status_code == 200
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    page = client.get(response["Location"]).content.decode()
    assert "without your authenticator code" in page
    assert sign_in(client, current_code(device)).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_an_admin_enrols_a_device_and_the_users_open_sessions_end(staff, django_user_model):
    lead = django_user_model.objects.create_superuser("lead", "", "lead-pw-1234")
    admin_client, ops_client = Client(), Client()
    assert admin_client.post(LOGIN, {"username": "lead", "password": "lead-pw-1234"}).status_code == 302
    assert sign_in(ops_client).status_code == 302 and ops_client.get("/admin/").status_code == 200

    response = admin_client.post("/admin/otp_totp/totpdevice/add/", {
        "user": staff.pk, "name": "ops phone", "confirmed": "on", "key": TOTPDevice().key, "step": 30, "t0": 0,
        "digits": 6, "tolerance": 1, "drift": 0, "throttling_failure_count": 0})
    assert response.status_code == 302, re.findall(r'<ul class="errorlist".*?</ul>', response.content.decode(), re.S)
    device = TOTPDevice.objects.get(user=staff)
    config = admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").content.decode()
    assert "otpauth://totp/" in config
    qr = admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/")
    assert qr.status_code == 200 and qr["Content-Type"] == "image/svg+xml"

    # The session ops opened without a code is over; signing in now needs it.
    assert ops_client.get("/admin/").status_code == 302
    assert sign_in(ops_client).status_code == 200
    assert sign_in(ops_client, current_code(device)).status_code == 302

    enrolled = AuditEntry.objects.get(action="otp_device.created")
    assert enrolled.actor == "lead" and enrolled.detail["changes"]["key"] == "(set)"
    assert device.key not in json.dumps([e.detail for e in AuditEntry.objects.all()])
    assert lead.pk == enrolled.user_id
