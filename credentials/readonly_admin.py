"""ReadOnlyAdmin: an admin list for records that are history (audit trail, alert events).

Nobody adds, edits or deletes history through the admin: it is written by the code
that acted, and a deleted or edited entry would make the trail lie.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
