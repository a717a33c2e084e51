"""The admin site: Django's, plus the second factor for staff who enrolled one (accounts.signin)."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.signin import AdminLoginForm, second_factor_ok


class AdminSite(admin.AdminSite):
    login_form = AdminLoginForm
    login_template = "admin/login.html"  # templates/admin/login.html adds the authenticator code row

    def has_permission(self, request: HttpRequest) -> bool:
        # A staff session signed in without its TOTP code (e.g. through /me/login/) is sent to the
        # admin login, which asks for the code.
        return super().has_permission(request) and second_factor_ok(request)
