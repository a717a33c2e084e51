from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def key_action(created: bool, changes: dict[str, Any]) -> str:
    revoked = changes.get("revoked_at")
    if created:
        return "key.issued"
    if revoked and revoked[0] is None and revoked[1] is not None:
        return "key.revoked"
    return "key.changed"


def user_action(created: bool, changes: dict[str, Any]) -> str:
    active = changes.get("is_active")
    if created:
        return "user.created"
    if active == [True, False]:
        return "user.deactivated"
    if active == [False, True]:
        return "user.activated"
    return "user.changed"


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Team and API keys"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django.db.models.signals import post_save, pre_save
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from accounts import signin
        from accounts.models import ApiKey
        from credentials import audit

        audit.track(ApiKey, "key", hidden=("digest", "last_used_at", "created_at"), classify=key_action,
                    describe=lambda k: f"{k} of {k.user.get_username()}")
        # Sign-ins have entries of their own; last_login is their by-product.
        audit.track(get_user_model(), "user", secret=("password",), hidden=("last_login", "date_joined"),
                    classify=user_action)
        audit.track(TOTPDevice, "otp_device", secret=("key",),
                    hidden=("last_t", "drift", "throttling_failure_timestamp", "throttling_failure_count",
                            "last_used_at", "created_at"))
        pre_save.connect(signin.before_device_saved, sender=TOTPDevice, dispatch_uid="signin.device_saving")
        post_save.connect(signin.on_device_saved, sender=TOTPDevice, dispatch_uid="signin.device_saved")
        user_logged_in.connect(signin.on_signed_in, dispatch_uid="audit.signin")
        user_login_failed.connect(signin.on_signin_failed, dispatch_uid="audit.signin_failed")
        user_locked_out.connect(signin.on_locked_out, dispatch_uid="audit.signin_locked")
