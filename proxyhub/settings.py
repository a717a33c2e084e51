"""ProxyHub settings: every knob is an environment variable (optional ``.env``).

The defaults run a checkout with no configuration: SQLite and a generated
secret key under ``data/``, the real upstream URLs, port 8317.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import environ

from proxyhub.client_ip import parse_trusted

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / "data"

env = environ.Env()
if (BASE_DIR / ".env").is_file():  # optional; real environment variables win
    environ.Env.read_env(BASE_DIR / ".env")


def _generated_secret_key() -> str:
    """A per-install key kept in data/, so sessions and encrypted tokens survive restarts."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default=None) or _generated_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "accounts.admin_config.ProxyHubAdminConfig",  # django.contrib.admin with the TOTP-aware site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "credentials",
    "accounts",
    "gateway",
    "gateway.usage",
    "proxyhub",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "proxyhub.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

# Sign-in throttle (django-axes, accounts.signin): after PROXYHUB_SIGNIN_FAILURE_LIMIT failures from one
# address or for one username, that address or username is locked out for PROXYHUB_SIGNIN_LOCKOUT_MINUTES.
AUTHENTICATION_BACKENDS = [
    "accounts.signin.SigninThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PROXYHUB_SIGNIN_FAILURE_LIMIT = env.int("PROXYHUB_SIGNIN_FAILURE_LIMIT", default=5)
PROXYHUB_SIGNIN_LOCKOUT_MINUTES = env.int("PROXYHUB_SIGNIN_LOCKOUT_MINUTES", default=15)
AXES_FAILURE_LIMIT = PROXYHUB_SIGNIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = PROXYHUB_SIGNIN_LOCKOUT_MINUTES / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # either one reaching the limit locks
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.signin.locked_out"
AXES_VERBOSE = False  # its log lines name the username and address; the audit trail has them
AXES_CLIENT_IP_CALLABLE = "accounts.signin.client_ip"  # behind a balancer: PROXYHUB_TRUSTED_PROXIES
OTP_TOTP_ISSUER = "ProxyHub"

ROOT_URLCONF = "proxyhub.urls"
ASGI_APPLICATION = "proxyhub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'proxyhub.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Without IMMEDIATE transactions and a busy timeout, concurrent usage writes
    # fail with "database is locked". synchronous=NORMAL is WAL's recommended level:
    # a commit survives a crashed process, and no longer waits for a disk sync
    # (most of a shared-state check's cost); only a power cut can lose the last
    # commits, and usage rows are journaled besides.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
         "transaction_mode": "IMMEDIATE"}
    )
    if not str(DATABASES["default"]["NAME"]).startswith(":"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
# Django's async docs: persistent connections don't mix with async code.
DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

LOGIN_URL = "/admin/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # request_id: the /v1 request a line is about ("-" for none), as sent in its x-request-id.
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"}},
    "filters": {"request_id": {"()": "gateway.request_context.RequestIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # httpx logs every token-endpoint call at INFO; ours say what matters.
    # axes logs every sign-in at INFO (the audit trail records them).
    "loggers": {"httpx": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- ProxyHub ---------------------------------------------------------------
PROXYHUB_HOST = env("PROXYHUB_HOST", default="127.0.0.1")
PROXYHUB_PORT = env.int("PROXYHUB_PORT", default=8317)
# The address teammates use, for generated client configs (default http://HOST:PORT).
PROXYHUB_PUBLIC_URL = env("PROXYHUB_PUBLIC_URL", default="")
# Fernet key (urlsafe base64, 32 bytes) for OAuth tokens at rest; derived from SECRET_KEY when unset.
PROXYHUB_ENCRYPTION_KEY = env("PROXYHUB_ENCRYPTION_KEY", default="")

PROXYHUB_CLAUDE_BASE_URL = env("PROXYHUB_CLAUDE_BASE_URL", default="https://api.anthropic.com")
PROXYHUB_CLAUDE_TOKEN_URL = env("PROXYHUB_CLAUDE_TOKEN_URL", default="https://platform.claude.com/v1/oauth/token")
# Tried when the Claude token URL is unreachable or answers with a non-OAuth page; empty disables.
PROXYHUB_CLAUDE_TOKEN_FALLBACK_URL = env("PROXYHUB_CLAUDE_TOKEN_FALLBACK_URL",
                                         default="https://api.anthropic.com/v1/oauth/token")
PROXYHUB_CODEX_BASE_URL = env("PROXYHUB_CODEX_BASE_URL", default="https://chatgpt.com/backend-api/codex")
PROXYHUB_CODEX_TOKEN_URL = env("PROXYHUB_CODEX_TOKEN_URL", default="https://auth.openai.com/oauth/token")
# Subscription usage (window state of idle accounts), polled off the request path every interval; 0 disables.
PROXYHUB_CLAUDE_USAGE_URL = env("PROXYHUB_CLAUDE_USAGE_URL", default="https://api.anthropic.com/api/oauth/usage")
PROXYHUB_CODEX_USAGE_URL = env("PROXYHUB_CODEX_USAGE_URL", default="https://chatgpt.com/backend-api/wham/usage")
PROXYHUB_WINDOW_POLL_SECONDS = env.float("PROXYHUB_WINDOW_POLL_SECONDS", default=300.0)

# Claude Code fingerprint sent upstream (PROTOCOLS.md §4.6); settings because they drift.
PROXYHUB_CLAUDE_BETAS = env.list(
    "PROXYHUB_CLAUDE_BETAS",
    default=["claude-code-20250219", "oauth-2025-04-20", "interleaved-thinking-2025-05-14",
             "fine-grained-tool-streaming-2025-05-14"],
)
PROXYHUB_CLAUDE_USER_AGENT = env("PROXYHUB_CLAUDE_USER_AGENT", default="claude-cli/2.1.331 (external, cli)")
PROXYHUB_CODEX_USER_AGENT = env(
    "PROXYHUB_CODEX_USER_AGENT", default="codex_cli_rs/0.169.0 (Linux 6.8.0; x86_64) xterm-256color"
)
PROXYHUB_CODEX_VERSION = env("PROXYHUB_CODEX_VERSION", default="0.169.0")
PROXYHUB_CODEX_ORIGINATOR = env("PROXYHUB_CODEX_ORIGINATOR", default="codex_cli_rs")

# Limits and timeouts (seconds).
PROXYHUB_MAX_BODY_BYTES = env.int("PROXYHUB_MAX_BODY_BYTES", default=32 * 1024 * 1024)
PROXYHUB_CONNECT_TIMEOUT = env.float("PROXYHUB_CONNECT_TIMEOUT", default=10.0)
PROXYHUB_READ_TIMEOUT = env.float("PROXYHUB_READ_TIMEOUT", default=600.0)
PROXYHUB_UPSTREAM_CONNECTIONS = env.int("PROXYHUB_UPSTREAM_CONNECTIONS", default=256)
PROXYHUB_MAX_ATTEMPTS = env.int("PROXYHUB_MAX_ATTEMPTS", default=4)
PROXYHUB_COOLDOWN_THROTTLE = env.int("PROXYHUB_COOLDOWN_THROTTLE", default=30)
PROXYHUB_COOLDOWN_OVERLOADED = env.int("PROXYHUB_COOLDOWN_OVERLOADED", default=60)
PROXYHUB_COOLDOWN_UNREACHABLE = env.int("PROXYHUB_COOLDOWN_UNREACHABLE", default=30)
PROXYHUB_KEY_CACHE_SECONDS = env.float("PROXYHUB_KEY_CACHE_SECONDS", default=30.0)
PROXYHUB_REFRESH_MARGIN = env.int("PROXYHUB_REFRESH_MARGIN", default=300)
# A background task refreshes tokens expiring within the margin, every interval.
PROXYHUB_BACKGROUND_REFRESH = env.bool("PROXYHUB_BACKGROUND_REFRESH", default=True)
PROXYHUB_REFRESH_INTERVAL = env.float("PROXYHUB_REFRESH_INTERVAL", default=60.0)
# Credential choice: round-robin, priority (fill-first), sticky (one account per conversation) or headroom
# (the account with the most room left in its fullest window).
PROXYHUB_POOL_STRATEGY = env("PROXYHUB_POOL_STRATEGY", default="round-robin")
PROXYHUB_POOL_PREFER_SOONEST_RESET = env.bool("PROXYHUB_POOL_PREFER_SOONEST_RESET", default=False)
# Shared state across processes and hosts (gateway.shared): Redis when set, else the database.
REDIS_URL = env("REDIS_URL", default="")
PROXYHUB_REDIS_PREFIX = env("PROXYHUB_REDIS_PREFIX", default="proxyhub:")
# How often each process checks whether keys, the catalog or credentials changed elsewhere.
PROXYHUB_SHARED_POLL_SECONDS = env.float("PROXYHUB_SHARED_POLL_SECONDS", default=1.0)
# How long a sticky conversation keeps its account after its last request.
PROXYHUB_STICKY_TTL = env.float("PROXYHUB_STICKY_TTL", default=3600.0)
# Accounts past this percent of any window are used only when no other account is ready.
PROXYHUB_POOL_MAX_UTILIZATION = env.float("PROXYHUB_POOL_MAX_UTILIZATION", default=95.0)
# Fair share: while an account of a provider is past this percent of its 5-hour window, keys with a share
# (ApiKey.pool_share_percent) past their share of the pool's trailing 5-hour tokens wait for the reset.
PROXYHUB_FAIR_SHARE_THRESHOLD = env.float("PROXYHUB_FAIR_SHARE_THRESHOLD", default=80.0)
PROXYHUB_KEEPALIVE_SECONDS = env.float("PROXYHUB_KEEPALIVE_SECONDS", default=15.0)
# A Responses WebSocket (gateway/websocket.py) with no message for this long between responses is closed; 0: never.
PROXYHUB_WS_IDLE_SECONDS = env.float("PROXYHUB_WS_IDLE_SECONDS", default=600.0)
# Bearer token a Prometheus scraper sends to /metrics; unset, /metrics answers loopback clients only.
PROXYHUB_METRICS_TOKEN = env("PROXYHUB_METRICS_TOKEN", default="")
# prometheus_client's multiprocess mode (gateway/usage/metrics.py) needs a directory shared by a host's workers,
# named before prometheus_client is imported. scripts/start makes one per run; a process started otherwise, or
# one that inherited another process's private directory, gets a private one: metrics of its own.
_metrics_owner = os.environ.get("PROXYHUB_METRICS_DIR_PID")
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") or (_metrics_owner and _metrics_owner != str(os.getpid())):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(
        Path(tempfile.gettempdir()) / f"proxyhub-metrics-{os.getpid()}-{secrets.token_hex(4)}")
    os.environ["PROXYHUB_METRICS_DIR_PID"] = str(os.getpid())
# SIGTERM: requests in flight get this long to finish before the process exits (proxyhub/drain.py).
PROXYHUB_DRAIN_SECONDS = env.float("PROXYHUB_DRAIN_SECONDS", default=30.0)
# Usage journal: every usage row is appended here before the answer's last byte (a killed worker loses
# none) and waits here while the database is unreachable. Local to the host, shared by its workers;
# a relative path is under the project. Empty: no journal (rows wait in memory only).
PROXYHUB_JOURNAL_DIR = env("PROXYHUB_JOURNAL_DIR", default="data/journal")
PROXYHUB_JOURNAL_MAX_BYTES = env.int("PROXYHUB_JOURNAL_MAX_BYTES", default=1024 ** 3)
# How often each worker replays the journal files of workers that died (seconds; also once at start).
PROXYHUB_JOURNAL_REPLAY_SECONDS = env.float("PROXYHUB_JOURNAL_REPLAY_SECONDS", default=30.0)
# Raw usage rows older than this are deleted daily (the hourly and daily rollups are kept); unset keeps all.
PROXYHUB_USAGE_RETENTION_DAYS = env.int("PROXYHUB_USAGE_RETENTION_DAYS", default=None)

# Alerts (credentials/alerts.py): a Slack-compatible webhook and/or e-mail, once per episode across processes.
PROXYHUB_ALERT_WEBHOOK_URL = env("PROXYHUB_ALERT_WEBHOOK_URL", default="")
PROXYHUB_ALERT_EMAILS = env.list("PROXYHUB_ALERT_EMAILS", default=[])
PROXYHUB_ALERT_WINDOW_PERCENT = env.float("PROXYHUB_ALERT_WINDOW_PERCENT", default=90.0)
# How often each process looks for high windows and for episodes that ended (seconds; 0 disables).
PROXYHUB_ALERT_CHECK_SECONDS = env.float("PROXYHUB_ALERT_CHECK_SECONDS", default=60.0)
# Delivery attempts per channel, and the first wait between them (doubling after each failure).
PROXYHUB_ALERT_ATTEMPTS = env.int("PROXYHUB_ALERT_ATTEMPTS", default=4)
PROXYHUB_ALERT_RETRY_SECONDS = env.float("PROXYHUB_ALERT_RETRY_SECONDS", default=2.0)
# Django's mail settings, for alert e-mails.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="proxyhub@localhost")
# Wrong-key throttle (gateway/app.py): past this many failed key checks from one address in the window
# (seconds), that address gets 429 for bad keys; valid keys from it keep working.
PROXYHUB_BAD_KEY_LIMIT = env.int("PROXYHUB_BAD_KEY_LIMIT", default=20)
PROXYHUB_BAD_KEY_WINDOW = env.float("PROXYHUB_BAD_KEY_WINDOW", default=60.0)
# Proxies whose X-Forwarded-For is believed (addresses or CIDRs, comma-separated): the load balancer in
# front of ProxyHub. Both throttles above and the audit trail then see the client behind it
# (proxyhub/client_ip.py). Empty: nobody's; the socket's peer is the client.
PROXYHUB_TRUSTED_PROXIES = parse_trusted(env.list("PROXYHUB_TRUSTED_PROXIES", default=[]))
