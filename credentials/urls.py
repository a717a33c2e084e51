"""URLs of the connect wizard and upload, mounted in the admin by CredentialAdmin.get_urls().

Mounting them there (not in proxyhub/urls.py) puts them under
/admin/credentials/credential/ behind admin_view: staff-only, CSRF-protected,
never cached, and named in the admin namespace (``admin:credentials_connect``).
"""
from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any, Callable

from django.contrib import admin
from django.urls import URLPattern, path

from credentials import views


def admin_urlpatterns(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        bound = update_wrapper(partial(view, model_admin=model_admin), view)
        return model_admin.admin_site.admin_view(bound)

    return [
        path("connect/<str:provider>/", wrap(views.connect_start), name="credentials_connect_start"),
        path("connect/login/<uuid:pending_id>/", wrap(views.connect_paste), name="credentials_connect"),
        path("upload/", wrap(views.upload), name="credentials_upload"),
    ]
