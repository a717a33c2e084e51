"""System checks for configuration mistakes (ids proxyhub.E001, W001 ...)."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register

STRATEGIES = ("round-robin", "priority", "sticky", "headroom")


@register()
def proxyhub_settings(app_configs: Any, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    if settings.PROXYHUB_POOL_STRATEGY not in STRATEGIES:
        problems.append(Error(f"PROXYHUB_POOL_STRATEGY must be one of {', '.join(STRATEGIES)}.", id="proxyhub.E001"))
    if settings.PROXYHUB_ENCRYPTION_KEY:
        from cryptography.fernet import Fernet

        try:
            Fernet(settings.PROXYHUB_ENCRYPTION_KEY.encode())
        except ValueError:
            problems.append(Error("PROXYHUB_ENCRYPTION_KEY must be 32 url-safe base64-encoded bytes "
                                  "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())').",
                                  id="proxyhub.E002"))
    for name in ("PROXYHUB_CLAUDE_BASE_URL", "PROXYHUB_CODEX_BASE_URL", "PROXYHUB_CLAUDE_TOKEN_URL", "PROXYHUB_CODEX_TOKEN_URL",
                 "PROXYHUB_CLAUDE_USAGE_URL", "PROXYHUB_CODEX_USAGE_URL"):
        if not str(getattr(settings, name)).startswith(("http://", "https://")):
            problems.append(Error(f"{name} must be an http(s) URL.", id="proxyhub.E003"))
    if not settings.DEBUG and settings.ALLOWED_HOSTS == ["*"] and settings.PROXYHUB_HOST not in ("127.0.0.1", "localhost"):
        problems.append(Warning("ALLOWED_HOSTS is '*' on a non-loopback address; set it to the server's name.",
                                id="proxyhub.W001"))
    return problems
