"""The upstream side: OAuth credentials and the model catalog."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from credentials.crypto import EncryptedTextField
from credentials.oauth import TokenSet


class Provider(models.TextChoices):
    CLAUDE = "claude", "Claude (Anthropic OAuth)"
    CODEX = "codex", "ChatGPT Codex (OpenAI OAuth)"


class Credential(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"
        NEEDS_RELOGIN = "needs_relogin", "Needs re-login"

    provider = models.CharField(max_length=16, choices=Provider.choices)
    label = models.CharField(max_length=100, blank=True)
    email = models.CharField(max_length=254, blank=True)
    account_id = models.CharField(max_length=100, blank=True, help_text="Claude account uuid or ChatGPT account id.")
    plan = models.CharField(max_length=40, blank=True)
    access_token = EncryptedTextField(blank=True, help_text="Encrypted at rest; never displayed.")
    refresh_token = EncryptedTextField(blank=True, help_text="Encrypted at rest; never displayed.")
    id_token = EncryptedTextField(blank=True, help_text="Encrypted at rest; never displayed.")
    expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=300, blank=True)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    cooldown_reason = models.CharField(max_length=200, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher is preferred by the priority strategy.")
    token_version = models.PositiveIntegerField(default=0, help_text="Bumped by every token refresh.")
    refresh_lock_until = models.DateTimeField(null=True, blank=True)
    last_refresh_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    windows = models.JSONField(default=dict, blank=True,
                               help_text="Subscription windows from rate-limit headers and the usage endpoints.")
    windows_polled_at = models.DateTimeField(null=True, blank=True,
                                             help_text="Last usage-endpoint poll claimed by any process.")
    groups = models.JSONField(default=list, blank=True,
                              help_text='Account groups, e.g. ["core"]; keys bound to groups use only their accounts.')
    proxy_url = models.CharField(
        max_length=300, blank=True,
        help_text="Optional outbound proxy for this account's traffic and token refreshes: "
                  "http://host:port, socks5://user:pass@host:port.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "-priority", "id"]
        indexes = [models.Index(fields=["provider", "status"])]

    def __str__(self) -> str:
        return f"{self.provider}:{self.label or self.email or self.account_id or self.pk}"

    def apply_tokens(self, tokens: TokenSet) -> None:
        """Take what a token endpoint or token file said; fields it left out keep their values."""
        self.access_token = tokens.access_token
        self.refresh_token = tokens.refresh_token or self.refresh_token
        self.id_token = tokens.id_token or self.id_token
        self.expires_at = tokens.expires_at
        self.email = tokens.email or self.email
        self.account_id = tokens.account_id or self.account_id
        self.plan = tokens.plan or self.plan

    def is_usable(self, now: datetime) -> bool:
        return self.status == self.Status.ACTIVE and not (self.cooldown_until and self.cooldown_until > now)

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at <= (now or timezone.now()) + timedelta(seconds=seconds)


class Model(models.Model):
    """One entry of the catalog: a public model name and where it goes."""

    name = models.CharField(max_length=100, unique=True, help_text="The name clients send.")
    display_name = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    upstream_id = models.CharField(max_length=100, blank=True, help_text="Sent upstream; defaults to the name.")
    aliases = models.JSONField(default=list, blank=True, help_text='Other names for this model, e.g. ["sonnet"].')
    enabled = models.BooleanField(default=True)
    max_output_tokens = models.PositiveIntegerField(default=32000)
    adaptive_thinking = models.BooleanField(
        default=False, help_text="Claude 4.6-class models: thinking {type: adaptive} plus output_config.effort."
    )
    input_price = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True, help_text="USD per million input tokens.")
    output_price = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True, help_text="USD per million output tokens.")
    cache_read_price = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    cache_write_price = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def upstream_model(self) -> str:
        return self.upstream_id or self.name


class PendingLogin(models.Model):
    """An OAuth login that was started and waits for the pasted code (credentials.connect).

    Kept in the database rather than the session: the PKCE verifier stays
    server-side whatever SESSION_ENGINE is (signed-cookie sessions would hand
    it to the browser), several flows can run at once in separate tabs, the
    terminal ``login`` command uses the same rows, and a flow is bound to the
    admin who started it. Rows live at most LIFETIME; expired ones are purged
    whenever a new login starts.
    """

    LIFETIME = timedelta(minutes=15)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    state = models.CharField(max_length=100)
    verifier = EncryptedTextField(help_text="PKCE code verifier; encrypted at rest, never displayed.")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.provider} login started {self.created_at:%Y-%m-%d %H:%M} UTC"

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at <= now


from credentials.audit_models import AuditEntry  # noqa: E402,F401  (registers the audit trail's model)
from credentials.alert_models import AlertEvent  # noqa: E402,F401  (registers the alert history's model)
