"""The self-service "create a key" form and its rule.

A teammate creates a key *from one of their active keys* (the "based on" key,
which staff issued): the new key may use only models that key allows (a chosen
subset, or the same patterns when none is chosen), expires no later than it and
carries the same rate limit and token budget. So self-service never widens
what staff granted; a teammate with no active key must ask staff.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import issue_key
from credentials.models import Model


class CreateKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where you will use it, e.g. laptop or ci.")
    based_on = forms.ModelChoiceField(
        queryset=ApiKey.objects.none(), empty_label=None,
        help_text="The new key gets this key's models (or fewer), expiry and limits.")
    models = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to allow every model the key above allows.")

    def __init__(self, user: AbstractBaseUser, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        bases = active_keys(user)
        self.fields["based_on"].queryset = bases
        self.fields["based_on"].label_from_instance = lambda k: f"{k.prefix}… {k.name} ({_models_label(k)})"
        names = Model.objects.filter(enabled=True).values_list("name", flat=True).order_by("provider", "name")
        base_list = list(bases)
        self.fields["models"].choices = [(n, n) for n in names if any(k.allows(n) for k in base_list)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        base: ApiKey | None = data.get("based_on")
        chosen = data.get("models") or []
        if base is not None:
            refused = [m for m in chosen if not base.allows(m)]
            if refused:
                self.add_error("models", f"{base.prefix}… does not allow: {', '.join(refused)}.")
        return data

    def issue(self) -> tuple[ApiKey, str]:
        """Create the key (call after is_valid()); returns it with the raw key, shown once."""
        base: ApiKey = self.cleaned_data["based_on"]
        chosen: list[str] = self.cleaned_data["models"]
        api_key, raw = issue_key(self.user, name=self.cleaned_data["name"],
                                 allowed_models=chosen or list(base.allowed_models or []),
                                 expires_at=base.expires_at)
        # The same limits and account groups as the key it is based on: a new key is no way around them.
        inherited = ("requests_per_minute", "monthly_token_budget", "concurrency_limit", "queue_wait_seconds",
                     "daily_token_limit", "monthly_cost_limit", "pool_share_percent", "groups")
        changed = [f for f in inherited if getattr(base, f) != getattr(api_key, f)]
        if changed:
            for f in changed:
                setattr(api_key, f, getattr(base, f))
            api_key.save(update_fields=changed)
        return api_key, raw


def active_keys(user: AbstractBaseUser) -> QuerySet[ApiKey]:
    """The user's unrevoked, unexpired keys, newest first."""
    now = timezone.now()
    return (ApiKey.objects.filter(user=user, revoked_at__isnull=True)
            .exclude(expires_at__lte=now).order_by("-created_at"))


def _models_label(api_key: ApiKey) -> str:
    return ", ".join(api_key.allowed_models or []) or "all models"
