"""API keys in the admin: issuing shows the key once; only the prefix is shown after.

The change page links to the key's client configs (downloads mounted here by
get_urls()) and to its usage in the staff usage report (/admin/usage/).
"""
from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables

from accounts import keys, views
from accounts.models import ApiKey
from accounts.services import digest
from credentials.groups import GroupsField


class ApiKeyForm(forms.ModelForm):
    allowed_models = forms.CharField(
        required=False, help_text="Comma-separated model names or globs, e.g. claude-*, gpt-5.5. Empty allows all.")
    groups = GroupsField(label="Account groups",
                         help_text="Comma-separated account groups this key may use, e.g. core. Empty: every account.")

    class Meta:
        model = ApiKey
        fields = ("user", "name", "allowed_models", "expires_at", "requests_per_minute", "concurrency_limit",
                  "queue_wait_seconds", "daily_token_limit", "monthly_token_budget", "monthly_cost_limit",
                  "pool_share_percent", "groups")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["queue_wait_seconds"].required = False
        if self.instance.pk:
            self.initial["allowed_models"] = ", ".join(self.instance.allowed_models or [])

    def clean_allowed_models(self) -> list[str]:
        return [p.strip() for p in self.cleaned_data.get("allowed_models", "").split(",") if p.strip()]

    def clean_queue_wait_seconds(self) -> float:
        return self.cleaned_data.get("queue_wait_seconds") or 0.0  # left empty: refused at once


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("prefix_copy", "name", "user", "models_display", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_select_related = ("user",)
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "user__username", "user__email")
    raw_id_fields = ("user",)
    actions = ("revoke",)
    # Adds links to the key's configs and usage (templates/accounts/apikey_change_form.html).
    change_form_template = "accounts/apikey_change_form.html"

    def get_urls(self) -> list[URLPattern]:
        view = update_wrapper(partial(views.admin_key_config, model_admin=self), views.admin_key_config)
        # First: the default "<path:object_id>/" pattern would swallow it.
        return [
            path("<path:object_id>/config/<str:fmt>/", self.admin_site.admin_view(view),
                 name="accounts_apikey_config"),
            *super().get_urls(),
        ]

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if lookup.startswith("digest"):
            return False
        return super().lookup_allowed(lookup, value, request)

    class Media:
        js = ("accounts/copy.js",)  # the prefix's copy button
        css = {"all": ("credentials/admin.css",)}  # the lists' shared fit-the-screen rules

    @admin.display(description="prefix", ordering="prefix")
    def prefix_copy(self, obj: ApiKey) -> str:
        """The prefix (the change link) with a copy button beside it."""
        return format_html('<code id="prefix-{}">{}</code>… <button type="button" class="copy" data-copy="prefix-{}" '
                           'title="Copy the prefix">Copy</button>', obj.pk, obj.prefix, obj.pk)

    @admin.display(description="models")
    def models_display(self, obj: ApiKey) -> str:
        return ", ".join(obj.allowed_models or []) or "all"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if not change:
            raw = keys.generate_key()
            obj.prefix, obj.digest = keys.visible_prefix(raw), digest(raw)
            super().save_model(request, obj, form, change)
            obj.issued_raw_key = raw  # for response_add's page only: never saved
            return
        super().save_model(request, obj, form, change)

    @method_decorator(never_cache)
    @method_decorator(sensitive_variables("raw"))
    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        """The new key, once, with a copy button, its ready configs and a Check button: rendered, not
        redirected to, so the raw key never rests in a session message."""
        raw = getattr(obj, "issued_raw_key", "")
        if not raw:
            return super().response_add(request, obj, post_url_continue)
        return TemplateResponse(request, "admin/accounts/apikey/key_created.html", {
            **self.admin_site.each_context(request), "title": f"New key: {obj.name}", "opts": self.opts,
            "key": obj, "raw": raw, "configs": views.render_configs(request, obj, raw)})

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            count += 1
        messages.success(request, f"Revoked {count} key(s).")
