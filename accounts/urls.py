"""Self-service pages, mounted at /me/ by proxyhub/urls.py (namespace ``accounts``).

The login page is our own (Django's LoginView with a plain template), so
teammates who are not staff never see the admin's login; settings.LOGIN_URL
stays the admin's and these views name theirs explicitly.
"""
from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.key_list, name="keys"),
    path("login/", auth_views.LoginView.as_view(
        template_name="accounts/login.html", next_page="accounts:keys", redirect_authenticated_user=True),
        name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="accounts:login"), name="logout"),
    path("keys/new/", views.key_create, name="key_create"),
    path("keys/<int:key_id>/", views.key_detail, name="key_detail"),
    path("keys/<int:key_id>/config/<str:fmt>/", views.key_config, name="key_config"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="key_revoke"),
]
