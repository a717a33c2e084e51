"""Locks on the sign-in doors (the admin's and /me/'s): a failure throttle and optional TOTP for staff.

The throttle is django-axes (settings AXES_*): repeated failures from one
address or for one username lock that address or username out for a while,
on both login views, because both authenticate through django.contrib.auth.
The address is the client's behind PROXYHUB_TRUSTED_PROXIES (client_ip()).
A locked-out sign-in gets locked_out(): a plain 429 page saying when to try again.

Two-factor is django-otp's TOTP: staff who have a confirmed TOTP device (an
admin enrols one under "TOTP devices") must give its code at the admin login
(AdminLoginForm), and the admin site (accounts.admin_site) lets them in only
with a verified session. Staff without a device sign in with a password alone.

Every sign-in, failure and lockout is written to the audit trail.
"""
from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django_otp import match_token, user_has_device

from credentials import audit
from proxyhub.client_ip import client_ip as real_client_ip

# Session flag set at sign-in: the user had no confirmed TOTP device then (see on_device_saved).
NO_DEVICE_AT_SIGNIN = "proxyhub_no_otp_device"


class SigninThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check, skipped for authenticate() calls with no request (no sign-in door:
    scripts, the test client's login()); every login view passes its request."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> AbstractBaseUser | None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The address a sign-in is counted under (AXES_CLIENT_IP_CALLABLE): the client behind the proxies
    of PROXYHUB_TRUSTED_PROXIES, never an X-Forwarded-For anyone else wrote (the audit trail's too)."""
    return real_client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"),
                          settings.PROXYHUB_TRUSTED_PROXIES)


def locked_out(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The lockout answer (AXES_LOCKOUT_CALLABLE): a clear 429 page with Retry-After, never a 500.

    Axes calls it as (request, original_response, credentials) or (request, credentials)."""
    minutes = settings.PROXYHUB_SIGNIN_LOCKOUT_MINUTES
    base = "admin/base_site.html" if request.path.startswith("/admin/") else "accounts/base.html"
    response = TemplateResponse(request, "accounts/locked_out.html", {
        "base": base, "minutes": minutes, "failures": settings.PROXYHUB_SIGNIN_FAILURE_LIMIT,
        "title": "Too many failed sign-ins", "site_header": "ProxyHub administration",
    }, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response.render()


class AdminLoginForm(AdminAuthenticationForm):
    """The admin login: username, password and, for staff with a TOTP device, its current code."""

    otp_token = forms.CharField(
        label="Authenticator code", required=False, max_length=8,
        help_text="Only if an admin enrolled an authenticator app for you: its current 6-digit code.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": "[0-9]*", "size": 8}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        user = self.get_user()
        if user is not None and user_has_device(user, confirmed=True):
            token = (data.get("otp_token") or "").strip()
            device = match_token(user, token) if token else None
            if device is None:
                audit.record("signin_failed", target=user, actor=_actor(self.request, user), reason="bad or missing "
                             "authenticator code")
                raise forms.ValidationError(
                    "This account has two-factor sign-in: enter the current code from your authenticator app.",
                    code="otp_required")
            # django_otp persists the device into the session on user_logged_in.
            user.otp_device = device  # type: ignore[attr-defined]
        return data


def second_factor_ok(request: HttpRequest) -> bool:
    """True unless the user has a confirmed TOTP device and this session did not verify it."""
    cached = getattr(request, "_second_factor_ok", None)
    if cached is not None:  # the admin asks several times per page
        return bool(cached)
    user = request.user
    if not user.is_authenticated:
        return False
    is_verified = getattr(user, "is_verified", None)
    ok = (bool(is_verified and is_verified()) or request.session.get(NO_DEVICE_AT_SIGNIN) is True
          or not user_has_device(user, confirmed=True))
    request._second_factor_ok = ok  # type: ignore[attr-defined]
    return ok


def sign_out_everywhere(user_id: int) -> int:
    """Delete ``user_id``'s sessions (database sessions), so a newly enrolled device is asked for at once."""
    from django.contrib.sessions.models import Session

    mine = [s.pk for s in Session.objects.filter(expire_date__gt=timezone.now())
            if s.get_decoded().get("_auth_user_id") == str(user_id)]
    return Session.objects.filter(pk__in=mine).delete()[0]


def before_device_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    # Verifying a code saves the device too (last_t, throttling): only a new confirmation counts.
    instance._newly_confirmed = bool(instance.confirmed) and (  # type: ignore[attr-defined]
        instance._state.adding or not sender.objects.filter(pk=instance.pk, confirmed=True).exists())


def on_device_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """A newly confirmed TOTP device ends the user's sessions: each was let in without a code
    (NO_DEVICE_AT_SIGNIN), and must now sign in again with one."""
    if instance.__dict__.pop("_newly_confirmed", False) and instance.user_id:
        sign_out_everywhere(instance.user_id)


def _actor(request: HttpRequest | None, user: Any = None, username: str = "") -> audit.Actor:
    address = audit.client_address(request.META) if request is not None else None
    if user is not None:
        return audit.Actor(user.get_username(), user.pk, address)
    return audit.Actor("anonymous", None, address)


def on_signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    where = request.path if request is not None else ""
    audit.record("signin", target=user, actor=_actor(request, user), path=where)
    if request is not None and hasattr(request, "session"):
        # One device query per sign-in instead of one per admin page (second_factor_ok).
        request.session[NO_DEVICE_AT_SIGNIN] = not user_has_device(user, confirmed=True)


def on_signin_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                     **kwargs: Any) -> None:
    # Django has already replaced the password in ``credentials``; only the username is kept.
    username = str(credentials.get("username") or "")[:150]
    audit.record("signin_failed", target_type="user", label=username, actor=_actor(request),
                 path=request.path if request is not None else "",
                 locked=True if getattr(request, "axes_locked_out", False) else None)


def on_locked_out(sender: Any, request: HttpRequest | None, username: str | None = None,
                  ip_address: str | None = None, **kwargs: Any) -> None:
    audit.record("signin_locked", target_type="user", label=str(username or "")[:150], actor=_actor(request),
                 minutes=settings.PROXYHUB_SIGNIN_LOCKOUT_MINUTES)
