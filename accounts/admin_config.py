"""The admin app's config, apart from accounts.admin_site: INSTALLED_APPS imports it before any model exists."""
from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class ProxyHubAdminConfig(AdminConfig):
    """Replaces "django.contrib.admin" in INSTALLED_APPS so that admin.site is accounts.admin_site.AdminSite."""

    default_site = "accounts.admin_site.AdminSite"
