"""LuxMail settings, read only from the environment (DESIGN.md §3, docs/operations.md).

Three modes, chosen with ``LUXMAIL_ENV``:

* ``production`` (the default): every secret must be set, ``DEBUG`` is off, cookies
  are secure and HSTS is on. A missing secret raises ``ImproperlyConfigured``.
* ``dev`` (``make run``): SQLite under ``var/``, Celery over the kombu file-system
  transport, the local SMTP sink, and secrets generated once into ``var/``.
* ``test`` (the pytest suite): PostgreSQL and Redis when they answer on 127.0.0.1,
  SQLite and in-memory fallbacks otherwise, unless ``LUXMAIL_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from luxmail import audit_checkpoints as _audit_checkpoints
from luxmail import env
from luxmail.accounts.sso import config as _sso_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.get("LUXMAIL_VAR_DIR") or BASE_DIR / "var")
MODE = env.mode()
PRODUCTION = MODE == "production"
TESTING = MODE == "test"
REQUIRE_SERVICES = env.boolean("LUXMAIL_REQUIRE_SERVICES", False)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _dev_secrets() -> dict[str, str]:
    """Secrets for ``make run``: generated once, kept in ``var/`` so restarts can decrypt."""
    path = VAR_DIR / "dev-secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "LUXMAIL_ENCRYPTION_KEYS": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "LUXMAIL_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


_TEST_SECRETS = {
    "SECRET_KEY": "test-only-secret-key-" + "x" * 40,
    # Two keys so the suite exercises a key ring, not a single key.
    "LUXMAIL_ENCRYPTION_KEYS": "t2:"
    + base64.b64encode(b"\x02" * 32).decode()
    + ",t1:"
    + base64.b64encode(b"\x01" * 32).decode(),
    "LUXMAIL_BLIND_INDEX_KEY": base64.b64encode(b"\x03" * 32).decode(),
}
_FALLBACKS: dict[str, str] = {}
if MODE == "dev":
    _FALLBACKS = _dev_secrets()
elif TESTING:
    _FALLBACKS = _TEST_SECRETS

SECRET_KEY = env.require("SECRET_KEY", fallback=_FALLBACKS.get("SECRET_KEY"))
LUXMAIL_ENCRYPTION_KEYS = env.require(
    "LUXMAIL_ENCRYPTION_KEYS", fallback=_FALLBACKS.get("LUXMAIL_ENCRYPTION_KEYS")
)
LUXMAIL_BLIND_INDEX_KEY = env.require(
    "LUXMAIL_BLIND_INDEX_KEY", fallback=_FALLBACKS.get("LUXMAIL_BLIND_INDEX_KEY")
)

DEBUG = env.boolean("LUXMAIL_DEBUG", MODE == "dev")
if DEBUG and PRODUCTION:
    raise ImproperlyConfigured(
        "LUXMAIL_DEBUG=1 is refused in production: debug pages show settings and local "
        "variables, which can hold PHI. Use LUXMAIL_ENV=dev (make run) to debug."
    )

ALLOWED_HOSTS = env.listing(
    "LUXMAIL_ALLOWED_HOSTS",
    None if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"],
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("The environment variable LUXMAIL_ALLOWED_HOSTS is required.")
# Absolute base URL used in emails (tracking, unsubscribe, portal links).
LUXMAIL_BASE_URL = env.require("LUXMAIL_BASE_URL", fallback="http://localhost:8000").rstrip("/")
if PRODUCTION and not LUXMAIL_BASE_URL.startswith("https://"):
    # Portal, tracking and unsubscribe links carry bearer tokens; never over plain HTTP.
    raise ImproperlyConfigured("LUXMAIL_BASE_URL must start with https:// in production.")
CSRF_TRUSTED_ORIGINS = env.listing("LUXMAIL_CSRF_TRUSTED_ORIGINS", [LUXMAIL_BASE_URL])

INSTALLED_APPS = [
    "luxmail.apps.LuxMailAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # `make run`'s runserver leaves static files to WhiteNoise (compressed, with its
    # headers) instead of serving them itself, uncompressed (luxmail/static_files.py).
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "axes",
    "csp",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "import_export",
    "luxmail",
    "contacts",
    "campaigns",
    "portal",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # /api/: body limits before anything reads the body; errors as problem details.
    "luxmail.api.problems.ApiProblemMiddleware",
    # /t/ (open pixel, click redirect) is answered here, before sessions and auth.
    "reporting.middleware.TrackingFastPathMiddleware",
    "luxmail.static_files.CompressingWhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # djangosaml2's own cookie (SameSite=None): the IdP posts the SAML response cross-site.
    "djangosaml2.middleware.SamlSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # django-otp's OTPMiddleware, plus MFA asserted by a single sign-on IdP.
    "luxmail.accounts.sso.middleware.OTPMiddleware",
    "luxmail.accounts.middleware.SessionPolicyMiddleware",
    "luxmail.accounts.middleware.MFARequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "luxmail.urls"
WSGI_APPLICATION = "luxmail.wsgi.application"
AUTH_USER_MODEL = "luxmail.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

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
                "csp.context_processors.nonce",
                "luxmail.context_processors.luxmail",
            ],
            # |when and {% org_time_zone %}: times in the organization's zone, labelled.
            "builtins": ["luxmail.templatetags.luxmail_time"],
        },
    },
]

# --- Database -----------------------------------------------------------------------
DATABASE_URL = env.get("DATABASE_URL")
if DATABASE_URL is None and TESTING and _answers("127.0.0.1", 5432):
    DATABASE_URL = "postgres://postgres@127.0.0.1:5432/luxmail"
if DATABASE_URL is None and TESTING and REQUIRE_SERVICES:
    raise ImproperlyConfigured(
        "LUXMAIL_REQUIRE_SERVICES=1 but no PostgreSQL answers on 127.0.0.1:5432 "
        "and DATABASE_URL is not set."
    )
if DATABASE_URL is None and PRODUCTION:
    raise ImproperlyConfigured("The environment variable DATABASE_URL is required.")
if DATABASE_URL is None:
    DATABASE_URL = f"sqlite:///{VAR_DIR / ('test.sqlite3' if TESTING else 'luxmail.sqlite3')}"

DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE serializes writers up front (no "database is locked" upgrade
        # failures); WAL lets the web process read while a worker writes.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["TEST"] = {"NAME": env.get("LUXMAIL_TEST_DATABASE_NAME")}
# A streaming read replica of the primary: report pages read through it (luxmail.replica),
# every write and every other read stays on "default". Tests mirror "default" under the
# alias (same connection settings, same test database) so the routing can be proved.
REPLICA_DATABASE_URL = env.get("LUXMAIL_REPLICA_DATABASE_URL")
if REPLICA_DATABASE_URL:
    DATABASES["replica"] = dj_database_url.parse(
        REPLICA_DATABASE_URL, conn_max_age=60, conn_health_checks=True
    )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
elif TESTING and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
LUXMAIL_REPLICA_READS = env.boolean("LUXMAIL_REPLICA_READS", bool(REPLICA_DATABASE_URL))
DATABASE_ROUTERS = ["luxmail.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery --------------------------------------------------------------
REDIS_URL = env.get("LUXMAIL_REDIS_URL")
# Tests: the pytest plugin (luxmail/testing.py) starts a throwaway redis-server and sets
# LUXMAIL_REDIS_URL; a shared Redis (and its db 15) is never borrowed implicitly. The
# plugin, not this module, refuses a CI run without Redis: mypy's Django plugin imports
# these settings too (under LUXMAIL_REQUIRE_SERVICES=1 in CI), outside any test session.
# Tracking durability (docs/operations.md "Tracking guarantees"): how an accepted open
# or click is made durable before the answer. ``redis-fsync``: the Redis stream, on a
# Redis verified at start-up to run appendonly yes + appendfsync always; ``redis-trusted``:
# the same without the check (managed Redis that refuses CONFIG; the operator vouches);
# ``postgres``: the write-ahead table only. Checked by reporting.buffer, not here.
LUXMAIL_TRACKING_DURABILITY = env.get("LUXMAIL_TRACKING_DURABILITY", "redis-fsync")
CELERY_BROKER_URL = env.get("CELERY_BROKER_URL")
if CELERY_BROKER_URL is None and PRODUCTION:
    raise ImproperlyConfigured("The environment variable CELERY_BROKER_URL is required.")
if REDIS_URL is None and PRODUCTION:
    # Web processes on several machines share rate limits and health probes through
    # the cache, so production needs Redis: the broker's, unless one is named.
    if CELERY_BROKER_URL and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        REDIS_URL = CELERY_BROKER_URL
    else:
        raise ImproperlyConfigured(
            "The environment variable LUXMAIL_REDIS_URL is required when "
            "CELERY_BROKER_URL is not a Redis URL."
        )

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "luxmail",
        }
    }
elif MODE == "dev":
    # make run: web, worker and beat are separate processes and must share the cache
    # (the deep health check, rate limits), so it lives in files under var/.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "KEY_PREFIX": "luxmail",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

if CELERY_BROKER_URL is None and TESTING and REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
if CELERY_BROKER_URL is None:
    # The embedded default (make run, or tests without Redis): kombu's file-system
    # transport under var/. Production refuses to start without CELERY_BROKER_URL.
    CELERY_BROKER_URL = "filesystem://localhost//"
    _queue = VAR_DIR / "celery" / "queue"
    _processed = VAR_DIR / "celery" / "processed"
    # kombu lists these folders when a worker declares its queue; they must exist.
    _queue.mkdir(parents=True, exist_ok=True)
    _processed.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "processed_folder": str(_processed),
        # kombu's default is ./control, relative to wherever a process was started.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
        # How often an idle worker looks for new messages (kombu's default is 1 s).
        "polling_interval": 0.2,
    }
# Redis broker: a late-acked task whose worker died is redelivered only after this
# many seconds. Recovery does not rely on it (the send sweep restarts chains within
# seconds, and a redelivered chain task whose slot was taken over exits); it must stay
# above the longest countdown LuxMail schedules (5 min), or waiting tasks would run twice.
LUXMAIL_BROKER_VISIBILITY_SECONDS = env.integer("LUXMAIL_BROKER_VISIBILITY_SECONDS", 3600)
if LUXMAIL_BROKER_VISIBILITY_SECONDS < 600:
    raise ImproperlyConfigured("LUXMAIL_BROKER_VISIBILITY_SECONDS must be at least 600.")
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": LUXMAIL_BROKER_VISIBILITY_SECONDS}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Unit tests run tasks inline; integration tests start a real worker with this off.
CELERY_TASK_ALWAYS_EAGER = env.boolean("LUXMAIL_CELERY_EAGER", TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep LOGGING (and its PHI redaction) in workers
LUXMAIL_HEARTBEAT_SECONDS = env.integer("LUXMAIL_HEARTBEAT_SECONDS", 60)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Lets /healthz?deep=1 tell that beat and a worker are alive (luxmail/health.py).
    "heartbeat": {"task": "luxmail.heartbeat", "schedule": float(LUXMAIL_HEARTBEAT_SECONDS)},
}
# Send pipeline (campaigns/sending/delivery.py, docs/architecture.md "Sending pipeline").
LUXMAIL_SEND_BATCH = env.integer("LUXMAIL_SEND_BATCH", 1000)
LUXMAIL_SEND_CHUNK = env.integer("LUXMAIL_SEND_CHUNK", 20)
LUXMAIL_SEND_CHAINS = env.integer("LUXMAIL_SEND_CHAINS", 2)
# Short leases, renewed by a heartbeat thread while a batch works: a killed worker's
# rows and chain slots are free again after the lease, and the recovery sweep (every
# LUXMAIL_SEND_RECOVERY_SECONDS) restarts its chains: recovery starts within
# lease + sweep interval (15 s by default; docs/operations.md).
LUXMAIL_SEND_LEASE_SECONDS = env.integer("LUXMAIL_SEND_LEASE_SECONDS", 10)
LUXMAIL_SEND_RECOVERY_SECONDS = env.integer("LUXMAIL_SEND_RECOVERY_SECONDS", 5)
LUXMAIL_SEND_MAX_ATTEMPTS = env.integer("LUXMAIL_SEND_MAX_ATTEMPTS", 8)
LUXMAIL_SEND_RETRY_BASE_SECONDS = env.integer("LUXMAIL_SEND_RETRY_BASE_SECONDS", 60)
LUXMAIL_SOFT_BOUNCE_LIMIT = env.integer("LUXMAIL_SOFT_BOUNCE_LIMIT", 3)
# Defaults of the organization's feedback policy (campaigns FeedbackPolicy, editable in
# the UI): soft-bounce window, and the campaign auto-pause thresholds.
LUXMAIL_SOFT_BOUNCE_DAYS = env.integer("LUXMAIL_SOFT_BOUNCE_DAYS", 15)
LUXMAIL_AUTOPAUSE_MIN_MESSAGES = env.integer("LUXMAIL_AUTOPAUSE_MIN_MESSAGES", 500)
LUXMAIL_AUTOPAUSE_HARD_BOUNCE_PERCENT = env.get("LUXMAIL_AUTOPAUSE_HARD_BOUNCE_PERCENT", "5")
LUXMAIL_AUTOPAUSE_COMPLAINT_PERCENT = env.get("LUXMAIL_AUTOPAUSE_COMPLAINT_PERCENT", "0.1")
LUXMAIL_AUTOPAUSE_PROVIDER_BLOCKS = env.integer("LUXMAIL_AUTOPAUSE_PROVIDER_BLOCKS", 50)
CELERY_BEAT_SCHEDULE["campaigns-start-due"] = {
    "task": "campaigns.tasks.start_due_campaigns",
    "schedule": 30.0,
}
CELERY_BEAT_SCHEDULE["campaigns-recover-sending"] = {
    "task": "campaigns.tasks.recover_sending",
    "schedule": float(LUXMAIL_SEND_RECOVERY_SECONDS),
}
# A/B tests whose wait is over get their winner on human events (reporting/abtests.py).
CELERY_BEAT_SCHEDULE["reporting-decide-ab-tests"] = {
    "task": "reporting.decide_ab_tests",
    "schedule": 300.0,
}
# Journeys (campaigns/journeys/, docs/architecture.md "Journeys"): beat advances due
# enrollments and evaluates segment/list/date triggers, each in bounded batches.
CELERY_IMPORTS = ("campaigns.journeys.tasks", "campaigns.transactional.confirmations")
LUXMAIL_JOURNEY_BATCH = env.integer("LUXMAIL_JOURNEY_BATCH", 200)
LUXMAIL_JOURNEY_LEASE_SECONDS = env.integer("LUXMAIL_JOURNEY_LEASE_SECONDS", 300)
LUXMAIL_JOURNEY_TICK_SECONDS = env.integer("LUXMAIL_JOURNEY_TICK_SECONDS", 30)
LUXMAIL_JOURNEY_TRIGGER_BATCH = env.integer("LUXMAIL_JOURNEY_TRIGGER_BATCH", 1000)
LUXMAIL_JOURNEY_TRIGGER_SECONDS = env.integer("LUXMAIL_JOURNEY_TRIGGER_SECONDS", 60)
# Unconfirmed sign-ups are purged once expired (contacts/services/signup.py).
CELERY_BEAT_SCHEDULE["signup-purge-expired"] = {
    "task": "campaigns.transactional.confirmations.purge_expired_signups",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["journeys-advance"] = {
    "task": "journeys.advance",
    "schedule": float(LUXMAIL_JOURNEY_TICK_SECONDS),
}
CELERY_BEAT_SCHEDULE["journeys-evaluate-triggers"] = {
    "task": "journeys.evaluate_triggers",
    "schedule": float(LUXMAIL_JOURNEY_TRIGGER_SECONDS),
}
# Outbound webhooks: deliveries whose retry is too far out for a countdown, or whose
# task was lost, are re-enqueued by this sweep (reporting/services.py).
# Scheduled reports (reporting/services/report_schedules.py): mails the due ones.
CELERY_BEAT_SCHEDULE["reporting-send-scheduled-reports"] = {
    "task": "reporting.send_scheduled_reports",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["reporting-dispatch-due-webhooks"] = {
    "task": "reporting.dispatch_due_webhooks",
    "schedule": 60.0,
}
# Tracking events wait in a durable buffer until the ingester classifies and stores them
# (reporting/ingest.py); one run at a time, each bounded.
CELERY_BEAT_SCHEDULE["reporting-ingest-tracking-events"] = {
    "task": "reporting.ingest_tracking_events",
    "schedule": 5.0,
}

# --- Authentication, MFA, sessions ------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Permissions only (authenticates nobody): luxmail.view_phi during an open
    # break-glass grant (luxmail/breakglass.py).
    "luxmail.breakglass.BreakGlassPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Argon2 at full cost makes a suite with hundreds of logins slow; production
    # never sees this hasher.
    PASSWORD_HASHERS.insert(0, "django.contrib.auth.hashers.MD5PasswordHasher")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_ENGINE = "django.contrib.sessions.backends.db"
LUXMAIL_SESSION_IDLE_SECONDS = env.integer("LUXMAIL_SESSION_IDLE_SECONDS", 15 * 60)
LUXMAIL_SESSION_ABSOLUTE_SECONDS = env.integer("LUXMAIL_SESSION_ABSOLUTE_SECONDS", 12 * 3600)
# Secure-message portal (portal/services/config.py): one-time codes and recipient sessions.
LUXMAIL_PORTAL_CODE_SECONDS = env.integer("LUXMAIL_PORTAL_CODE_SECONDS", 600)
LUXMAIL_PORTAL_CODE_INTERVAL_SECONDS = env.integer("LUXMAIL_PORTAL_CODE_INTERVAL_SECONDS", 60)
LUXMAIL_PORTAL_CODES_PER_HOUR = env.integer("LUXMAIL_PORTAL_CODES_PER_HOUR", 5)
LUXMAIL_PORTAL_MAX_ATTEMPTS = env.integer("LUXMAIL_PORTAL_MAX_ATTEMPTS", 5)
LUXMAIL_PORTAL_IDLE_SECONDS = env.integer("LUXMAIL_PORTAL_IDLE_SECONDS", 600)
# Staff replies in the portal may carry files (portal/attachments.py): each at most this
# big; ClamAV's clamd (a Unix socket path or host:port) scans them when reachable.
LUXMAIL_PORTAL_ATTACHMENT_MAX_BYTES = env.integer(
    "LUXMAIL_PORTAL_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024
)
LUXMAIL_CLAMAV_ADDRESS = env.get("LUXMAIL_CLAMAV_ADDRESS", "/run/clamav/clamd.ctl")
LUXMAIL_CLAMAV_TIMEOUT_SECONDS = env.integer("LUXMAIL_CLAMAV_TIMEOUT_SECONDS", 30)
# Daily: a "key rotation due" notification once the last `rotate_keys` is older than
# LUXMAIL_KEY_ROTATION_DAYS (below; luxmail/notifications.py).
CELERY_BEAT_SCHEDULE["luxmail-key-rotation-due"] = {
    "task": "luxmail.key_rotation_check",
    "schedule": 86400.0,
}
# Sign-up forms and double opt-in (contacts/services/signup.py, docs/operations.md).
LUXMAIL_SIGNUP_CONFIRM_HOURS = env.integer("LUXMAIL_SIGNUP_CONFIRM_HOURS", 48)
LUXMAIL_SIGNUP_RATE_IP = env.get("LUXMAIL_SIGNUP_RATE_IP", "20/h")
LUXMAIL_SIGNUP_RATE_ADDRESS = env.get("LUXMAIL_SIGNUP_RATE_ADDRESS", "5/h")
LUXMAIL_SIGNUP_CONFIRMATIONS_PER_DAY = env.integer("LUXMAIL_SIGNUP_CONFIRMATIONS_PER_DAY", 3)
# Staff management (luxmail/staff.py): invitation links expire after this many hours;
# break-glass PHI access (luxmail/breakglass.py) lasts at most this many minutes.
LUXMAIL_INVITATION_HOURS = env.integer("LUXMAIL_INVITATION_HOURS", 72)
LUXMAIL_BREAK_GLASS_MAX_MINUTES = env.integer("LUXMAIL_BREAK_GLASS_MAX_MINUTES", 240)
# The compliance dashboard calls a key (encryption key ring, DKIM) due for rotation
# after this many days, and a "key rotation due" notification appears.
LUXMAIL_KEY_ROTATION_DAYS = env.integer("LUXMAIL_KEY_ROTATION_DAYS", 365)
SESSION_COOKIE_AGE = LUXMAIL_SESSION_IDLE_SECONDS
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

OTP_TOTP_ISSUER = env.get("LUXMAIL_OTP_ISSUER", "LuxMail")
# django-otp's back-off pauses a device from the first wrong code, so a typo made the
# next correct code fail. LuxMail's own back-off (luxmail/accounts/services.py,
# CODE_FREE_FAILURES) forgives two typos, then says how long to wait.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
OTP_WEBAUTHN_RP_ID = env.get(
    "LUXMAIL_WEBAUTHN_RP_ID", LUXMAIL_BASE_URL.split("://", 1)[-1].split(":")[0].split("/")[0]
)
OTP_WEBAUTHN_RP_NAME = OTP_TOTP_ISSUER
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.listing("LUXMAIL_WEBAUTHN_ORIGINS", [LUXMAIL_BASE_URL])
# Passkeys are a second factor only: a passwordless sign-in would skip the password
# step, its lockout and its audit event.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
# The admin never shows TOTP secrets or backup codes.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

AXES_FAILURE_LIMIT = env.integer("LUXMAIL_LOCKOUT_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env.integer("LUXMAIL_LOCKOUT_MINUTES", 30))
# Lock the account, not the address: a hospital's staff often share one NAT address,
# and an IP lock would let one attacker lock everybody out (hence axes.W006 silenced).
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
# Failures (password and second factor) are forgiven only after a complete sign-in
# (luxmail.accounts.services): resetting on the password alone would let someone who
# knows the password retry codes forever by signing in again between guesses.
AXES_RESET_ON_SUCCESS = False
# Never keep submitted codes in the lockout records.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "token", "csrfmiddlewaretoken"]
AXES_LOCKOUT_CALLABLE = "luxmail.accounts.views.locked_out"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_IPWARE_PROXY_COUNT = env.integer("LUXMAIL_PROXY_COUNT", 0) or None

# --- Single sign-on (luxmail/accounts/sso/, docs/security.md "Single sign-on") ----------
# OpenID Connect (mozilla-django-oidc) is on when LUXMAIL_OIDC_CLIENT_ID is set; SAML 2.0
# (djangosaml2) when LUXMAIL_SAML_IDP_METADATA names the IdP's metadata file. Both are off
# by default, so `make run` needs no identity provider.
LUXMAIL_OIDC_CLIENT_ID = env.get("LUXMAIL_OIDC_CLIENT_ID") or ""
LUXMAIL_OIDC_PROVIDER_NAME = env.get("LUXMAIL_OIDC_PROVIDER_NAME", "single sign-on")
LUXMAIL_OIDC_GROUPS_CLAIM = env.get("LUXMAIL_OIDC_GROUPS_CLAIM", "groups")
# ID-token ``amr`` values (RFC 8176) and ``acr`` values that count as MFA at the IdP.
LUXMAIL_OIDC_MFA_AMR = env.listing("LUXMAIL_OIDC_MFA_AMR", ["mfa", "otp", "hwk", "sc"])
LUXMAIL_OIDC_MFA_ACR = env.listing("LUXMAIL_OIDC_MFA_ACR", [])
OIDC_RP_CLIENT_ID = LUXMAIL_OIDC_CLIENT_ID
OIDC_RP_CLIENT_SECRET = env.get("LUXMAIL_OIDC_CLIENT_SECRET") or ""
OIDC_OP_AUTHORIZATION_ENDPOINT = env.get("LUXMAIL_OIDC_AUTHORIZATION_ENDPOINT") or ""
OIDC_OP_TOKEN_ENDPOINT = env.get("LUXMAIL_OIDC_TOKEN_ENDPOINT") or ""
OIDC_OP_USER_ENDPOINT = env.get("LUXMAIL_OIDC_USERINFO_ENDPOINT") or ""
OIDC_OP_JWKS_ENDPOINT = env.get("LUXMAIL_OIDC_JWKS_ENDPOINT") or ""
if LUXMAIL_OIDC_CLIENT_ID and not all(
    (OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_JWKS_ENDPOINT)
):
    raise ImproperlyConfigured(
        "LUXMAIL_OIDC_CLIENT_ID is set: LUXMAIL_OIDC_AUTHORIZATION_ENDPOINT, "
        "LUXMAIL_OIDC_TOKEN_ENDPOINT and LUXMAIL_OIDC_JWKS_ENDPOINT are required too."
    )
# ID tokens must be signed with the IdP's key (never HS256 with the client secret).
OIDC_RP_SIGN_ALGO = env.get("LUXMAIL_OIDC_SIGN_ALGO", "RS256")
# Some IdPs send groups only for an extra scope (e.g. "groups"): add it here.
OIDC_RP_SCOPES = env.get("LUXMAIL_OIDC_SCOPES", "openid email profile")
OIDC_TIMEOUT = 10
OIDC_USE_PKCE = True
OIDC_CREATE_USER = False  # provisioning is LuxMail's (LUXMAIL_SSO_CREATE_USERS)
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
LUXMAIL_SAML_IDP_METADATA = env.get("LUXMAIL_SAML_IDP_METADATA") or ""
LUXMAIL_SAML_PROVIDER_NAME = env.get("LUXMAIL_SAML_PROVIDER_NAME", "SAML single sign-on")
LUXMAIL_SAML_ENTITY_ID = env.get("LUXMAIL_SAML_ENTITY_ID") or f"{LUXMAIL_BASE_URL}/saml2/metadata/"
LUXMAIL_SAML_EMAIL_ATTRIBUTE = env.get("LUXMAIL_SAML_EMAIL_ATTRIBUTE", "email")
LUXMAIL_SAML_GROUPS_ATTRIBUTE = env.get("LUXMAIL_SAML_GROUPS_ATTRIBUTE", "groups")
# AuthnContextClassRef values that count as MFA at the IdP (REFEDS MFA, Entra ID).
LUXMAIL_SAML_MFA_CONTEXTS = env.listing(
    "LUXMAIL_SAML_MFA_CONTEXTS",
    ["https://refeds.org/profile/mfa", "http://schemas.microsoft.com/claims/multipleauthn"],
)
# IdP groups (OIDC claim / SAML attribute values) -> LuxMail roles: "idp-group=Role,…".
LUXMAIL_SSO_GROUP_ROLES = env.listing("LUXMAIL_SSO_GROUP_ROLES", [])
# Off: only staff whose email already has an account (invited) may sign in by SSO.
LUXMAIL_SSO_CREATE_USERS = env.boolean("LUXMAIL_SSO_CREATE_USERS", False)
if LUXMAIL_OIDC_CLIENT_ID:
    AUTHENTICATION_BACKENDS.append("luxmail.accounts.sso.backends.OIDCBackend")
if LUXMAIL_SAML_IDP_METADATA:
    AUTHENTICATION_BACKENDS.append("luxmail.accounts.sso.backends.SAMLBackend")
SAML_SESSION_COOKIE_NAME = "luxmail_saml"
SAML_DJANGO_USER_MAIN_ATTRIBUTE = "email"
SAML_CREATE_UNKNOWN_USER = False
SAML_CONFIG: dict[str, object] = {}
if LUXMAIL_SAML_IDP_METADATA and not Path(LUXMAIL_SAML_IDP_METADATA).is_file():
    raise ImproperlyConfigured(
        f"LUXMAIL_SAML_IDP_METADATA names {LUXMAIL_SAML_IDP_METADATA!r}, which is not a file."
    )
if LUXMAIL_SAML_IDP_METADATA:
    SAML_CONFIG = _sso_config.saml_config(
        entity_id=LUXMAIL_SAML_ENTITY_ID,
        base_url=LUXMAIL_BASE_URL,
        idp_metadata=LUXMAIL_SAML_IDP_METADATA,
        xmlsec_binary=env.get("LUXMAIL_XMLSEC_BINARY", "/usr/bin/xmlsec1") or "/usr/bin/xmlsec1",
    )

# --- Security headers -----------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env.boolean("LUXMAIL_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.boolean("LUXMAIL_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env.integer("LUXMAIL_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# The preload directive only takes effect once the domain is submitted to the browsers'
# preload list, a deliberate step the operator takes (docs/operations.md).
SECURE_HSTS_PRELOAD = env.boolean("LUXMAIL_HSTS_PRELOAD", PRODUCTION)
if env.boolean("LUXMAIL_BEHIND_TLS_PROXY", PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "luxmail.api.authentication.ApiKeyAuthentication",
        "luxmail.api.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["luxmail.api.permissions.HasScope"],
    "DEFAULT_PAGINATION_CLASS": "luxmail.api.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_VERSIONING_CLASS": None,
    "UNAUTHENTICATED_USER": None,
    # docs/api.md "Errors", "Rate limits", "Body limits".
    "EXCEPTION_HANDLER": "luxmail.api.problems.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "luxmail.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "luxmail.api.throttling.ApiKeyRateThrottle",
        "luxmail.api.throttling.AnonRateThrottle",
    ],
}
# API rate limits ("<count>/<s|min|h|day>"), counted in the cache (Redis): per API key
# (or signed-in staff member) and per client IP for requests without valid credentials.
# The suite shares one client IP across hundreds of tests, so its anonymous budget is
# wide; the throttle tests set their own rates.
LUXMAIL_API_RATE_KEY = env.get("LUXMAIL_API_RATE_KEY", "1000/min")
LUXMAIL_API_RATE_ANON = env.get("LUXMAIL_API_RATE_ANON", "100000/min" if TESTING else "60/min")
_RATE = re.compile(r"\s*[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)\s*")
for _rate_name in ("LUXMAIL_API_RATE_KEY", "LUXMAIL_API_RATE_ANON"):
    if not _RATE.fullmatch(str(globals()[_rate_name])):
        raise ImproperlyConfigured(f"{_rate_name} must look like '60/min' (count/s|min|h|day).")
# Largest API request body (bytes), refused with 413 before parsing; a view may take
# more with a ``max_body_bytes`` attribute (bounce reports). JSON bodies are also
# refused past a nesting depth and a total number of object keys.
LUXMAIL_API_MAX_BODY_BYTES = env.integer("LUXMAIL_API_MAX_BODY_BYTES", 1024 * 1024)
LUXMAIL_API_MAX_JSON_DEPTH = env.integer("LUXMAIL_API_MAX_JSON_DEPTH", 64)
LUXMAIL_API_MAX_JSON_KEYS = env.integer("LUXMAIL_API_MAX_JSON_KEYS", 10_000)
SPECTACULAR_SETTINGS = {
    "TITLE": "LuxMail API",
    "DESCRIPTION": "PHI-safe email marketing. Authenticate with `Authorization: Bearer <API key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["luxmail.api.permissions.IsVerifiedStaff"],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "luxmail.api.schema.add_problem_responses",
    ],
    # Several resources have a "status"; name each choice set explicitly.
    "ENUM_NAME_OVERRIDES": {
        "WebhookDeliveryStatusEnum": "reporting.models.WebhookDelivery.Status",
        "ContactStatusEnum": "contacts.models.ContactStatus",
        "BounceKindEnum": "campaigns.models.sending.BounceKind",
        "SenderEventKindEnum": "campaigns.models.feedback.SenderEventKind",
        "EncryptionKeyKindEnum": "contacts.models.EncryptionKeyKind",
        "SuppressionReasonEnum": "contacts.models.SuppressionReason",
        "ContactConsentFilterEnum": "contacts.search.CONSENT_CHOICES",
    },
}

# --- Static files, i18n ---------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.get("LUXMAIL_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Mail -----------------------------------------------------------------------------
# The relay LuxMail delivers through (campaign mail and its own notices). In dev the
# relay is the local sink started by `make run`; see docs/operations.md.
LUXMAIL_SMTP_HOST = env.get("LUXMAIL_SMTP_HOST", "127.0.0.1")
LUXMAIL_SMTP_PORT = env.integer("LUXMAIL_SMTP_PORT", 1025 if not PRODUCTION else 587)
LUXMAIL_SMTP_USER = env.get("LUXMAIL_SMTP_USER")
LUXMAIL_SMTP_PASSWORD = env.get("LUXMAIL_SMTP_PASSWORD")
# starttls | implicit | none ("none" only outside production: the dev sink).
LUXMAIL_SMTP_SECURITY = env.get("LUXMAIL_SMTP_SECURITY", "starttls" if PRODUCTION else "none")
if PRODUCTION and LUXMAIL_SMTP_SECURITY == "none":
    raise ImproperlyConfigured("LUXMAIL_SMTP_SECURITY=none is only allowed outside production.")
LUXMAIL_SMTP_CA_FILE = env.get("LUXMAIL_SMTP_CA_FILE")
LUXMAIL_SMTP_TIMEOUT = env.integer("LUXMAIL_SMTP_TIMEOUT", 30)
# The name announced in HELO/EHLO to MX hosts (campaigns/secure/tls.py); unset: the host
# of LUXMAIL_BASE_URL.
LUXMAIL_SMTP_HELO_NAME = env.get("LUXMAIL_SMTP_HELO_NAME")
# Direct-to-MX delivery (campaigns/secure/tls.py): fixed routes for chosen domains,
# "example.org=127.0.0.1:2525,other.test=[::1]:2526" (tests, on-prem routing; MTA-STS is
# not consulted for them), and a CA bundle that replaces the system trust store when
# verifying MX and MTA-STS certificates (tests: the test CA).
LUXMAIL_MX_OVERRIDES = env.listing("LUXMAIL_MX_OVERRIDES")
LUXMAIL_MX_CA_FILE = env.get("LUXMAIL_MX_CA_FILE")
LUXMAIL_SINK_DIR = VAR_DIR / "mail"
# The campaign review page's pre-send check (campaigns/presend/): how links are checked
# (http: public addresses only; http-any: private ones too, for intranets and tests;
# off: air-gapped installs, the item says "not checked"), how long link and DNS answers
# are cached, and the DNS server that SPF/DKIM/DMARC are looked up at ("host:port";
# empty: the system's resolver; "off": not checked). The test suite turns both off; the
# pre-send tests turn them on against their own local servers.
LUXMAIL_LINK_CHECK = env.get("LUXMAIL_LINK_CHECK", "off" if TESTING else "http")
if LUXMAIL_LINK_CHECK not in ("http", "http-any", "off"):
    raise ImproperlyConfigured("LUXMAIL_LINK_CHECK must be http, http-any or off.")
LUXMAIL_PRESEND_CACHE_SECONDS = env.integer("LUXMAIL_PRESEND_CACHE_SECONDS", 3600)
LUXMAIL_DNS_RESOLVER = env.get("LUXMAIL_DNS_RESOLVER", "off" if TESTING else "")
# Quiet hours ("start-end", local hours 0-23) a new organization starts with; the
# Settings page changes them. The test suite starts without (equal hours), so tests that
# send marketing do not depend on the hour CI runs at; quiet-hours tests set their own.
LUXMAIL_DEFAULT_QUIET_HOURS = env.get("LUXMAIL_DEFAULT_QUIET_HOURS", "0-0" if TESTING else "21-8")
_quiet = str(LUXMAIL_DEFAULT_QUIET_HOURS).partition("-")
if not (_quiet[0].isdigit() and _quiet[2].isdigit() and max(int(_quiet[0]), int(_quiet[2])) < 24):
    raise ImproperlyConfigured("LUXMAIL_DEFAULT_QUIET_HOURS must be two hours 0-23, e.g. 21-8.")
# The dev Outbox page (luxmail/devtools.py) lists the sink's mail; never in production.
LUXMAIL_DEV_OUTBOX = MODE == "dev"
DEFAULT_FROM_EMAIL = env.get("LUXMAIL_DEFAULT_FROM_EMAIL", "luxmail@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_BACKEND = "luxmail.mail.RelayEmailBackend"

# --- Audit ----------------------------------------------------------------------------
# HIPAA §164.316(b)(2): keep documentation six years. Shorter values are refused.
LUXMAIL_AUDIT_MIN_RETENTION_DAYS = 6 * 365 + 2
LUXMAIL_AUDIT_RETENTION_DAYS = env.integer(
    "LUXMAIL_AUDIT_RETENTION_DAYS", LUXMAIL_AUDIT_MIN_RETENTION_DAYS
)
if LUXMAIL_AUDIT_RETENTION_DAYS < LUXMAIL_AUDIT_MIN_RETENTION_DAYS:
    raise ImproperlyConfigured(
        f"LUXMAIL_AUDIT_RETENTION_DAYS must be at least {LUXMAIL_AUDIT_MIN_RETENTION_DAYS} "
        "(six years)."
    )
# Signed checkpoints anchoring both ends of the chain (luxmail/audit_checkpoints.py,
# docs/security.md#audit-chain): an append-only file per database in this directory,
# which the database's owner must not be able to rewrite (docs/operations.md).
LUXMAIL_AUDIT_CHECKPOINT_DIR = Path(
    env.get("LUXMAIL_AUDIT_CHECKPOINT_DIR") or VAR_DIR / "audit-checkpoints"
)
# Key ring ``id:secret,…`` (secrets ≥ 32 characters): the first signs, all verify.
# Outside production a key is derived from SECRET_KEY.
LUXMAIL_AUDIT_CHECKPOINT_KEYS = env.require(
    "LUXMAIL_AUDIT_CHECKPOINT_KEYS",
    fallback="derived:"
    + hmac.new(SECRET_KEY.encode(), b"luxmail-audit-checkpoint-v1", hashlib.sha256).hexdigest(),
)
try:
    _audit_checkpoints.parse_keys(LUXMAIL_AUDIT_CHECKPOINT_KEYS)
except ValueError as _error:
    raise ImproperlyConfigured(f"LUXMAIL_AUDIT_CHECKPOINT_KEYS: {_error}.") from None
LUXMAIL_AUDIT_CHECKPOINT_SECONDS = env.integer("LUXMAIL_AUDIT_CHECKPOINT_SECONDS", 900)
# Break-glass grants that ran out are stamped and audited (breakglass.expire); access
# ends at expires_at whether or not this has run.
CELERY_BEAT_SCHEDULE["break-glass-expire"] = {
    "task": "luxmail.break_glass_expire",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
    "task": "luxmail.audit_checkpoint",
    "schedule": float(LUXMAIL_AUDIT_CHECKPOINT_SECONDS),
}

# --- Retention (luxmail/retention.py, docs/operations.md "Retention") -------------------
# Beat runs the purge every LUXMAIL_RETENTION_SECONDS; each purge deletes at most
# LUXMAIL_RETENTION_MAX_BATCHES batches of LUXMAIL_RETENTION_BATCH rows per run.
LUXMAIL_RETENTION_SECONDS = env.integer("LUXMAIL_RETENTION_SECONDS", 3600)
LUXMAIL_RETENTION_BATCH = env.integer("LUXMAIL_RETENTION_BATCH", 1000)
LUXMAIL_RETENTION_MAX_BATCHES = env.integer("LUXMAIL_RETENTION_MAX_BATCHES", 200)
CELERY_BEAT_SCHEDULE["retention-purge"] = {
    "task": "luxmail.retention_purge",
    "schedule": float(LUXMAIL_RETENTION_SECONDS),
}

# --- Partitioned tables (luxmail/partitions.py, docs/operations.md "Partitions") -------
# On PostgreSQL, beat creates monthly partitions of messages and tracking events this many
# months ahead, every LUXMAIL_PARTITION_SECONDS.
LUXMAIL_PARTITION_MONTHS_AHEAD = env.integer("LUXMAIL_PARTITION_MONTHS_AHEAD", 3)
LUXMAIL_PARTITION_SECONDS = env.integer("LUXMAIL_PARTITION_SECONDS", 6 * 3600)
CELERY_BEAT_SCHEDULE["partitions-ensure"] = {
    "task": "luxmail.partitions_ensure",
    "schedule": float(LUXMAIL_PARTITION_SECONDS),
}

# --- Contact import (contacts/imports/) ------------------------------------------------
# Uploaded files wait here between upload and import and are deleted after it. Web and
# worker processes must share this directory (docs/operations.md).
LUXMAIL_IMPORT_DIR = Path(env.get("LUXMAIL_IMPORT_DIR") or VAR_DIR / "media" / "imports")
LUXMAIL_IMPORT_MAX_BYTES = env.integer("LUXMAIL_IMPORT_MAX_BYTES", 100 * 1024 * 1024)
LUXMAIL_IMPORT_MAX_ROWS = env.integer("LUXMAIL_IMPORT_MAX_ROWS", 250_000)
# Bounds on reading a stranger's file (docs/security.md "Import limits").
LUXMAIL_IMPORT_MAX_EXPANDED_BYTES = env.integer(
    "LUXMAIL_IMPORT_MAX_EXPANDED_BYTES", 200 * 1024 * 1024
)
LUXMAIL_IMPORT_MAX_RATIO = env.integer("LUXMAIL_IMPORT_MAX_RATIO", 100)
LUXMAIL_IMPORT_MAX_MEMBERS = env.integer("LUXMAIL_IMPORT_MAX_MEMBERS", 500)
LUXMAIL_IMPORT_MAX_COLUMNS = env.integer("LUXMAIL_IMPORT_MAX_COLUMNS", 200)
LUXMAIL_IMPORT_MAX_CELL_CHARS = env.integer("LUXMAIL_IMPORT_MAX_CELL_CHARS", 32_767)
LUXMAIL_IMPORT_MAX_LINE_CHARS = env.integer("LUXMAIL_IMPORT_MAX_LINE_CHARS", 1024 * 1024)
LUXMAIL_IMPORT_MAX_SHARED_STRINGS = env.integer("LUXMAIL_IMPORT_MAX_SHARED_STRINGS", 2_000_000)
LUXMAIL_IMPORT_MAX_SHARED_BYTES = env.integer("LUXMAIL_IMPORT_MAX_SHARED_BYTES", 64 * 1024 * 1024)
LUXMAIL_IMPORT_BATCH = env.integer("LUXMAIL_IMPORT_BATCH", 2000)
# Files of imports abandoned for a day are deleted (contacts/imports/services/cleanup.py).
CELERY_BEAT_SCHEDULE["contacts-expire-imports"] = {
    "task": "contacts.import_expire",
    "schedule": 3600.0,
}

# --- Logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "luxmail.logging.RedactPHIFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env.get("LUXMAIL_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Axes logs usernames and IPs at WARNING; we record lockouts in the audit log.
        "axes": {"level": "ERROR"},
        # Django's own "django" logger would mail tracebacks (with request data) to
        # ADMINS; everything goes through the redacting console handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # aiosmtpd (the dev sink) logs every connection at INFO.
        "mail.log": {"level": "WARNING"},
        # Mailman's bounce detectors (campaigns/sending/feedback) log each detector run at
        # INFO and a traceback for each that trips on malformed mail, which the reader
        # catches and survives: neither is news to an operator.
        "flufl.bounce": {"level": "CRITICAL"},
        # pysaml2's schema library logs every schema it loads at INFO.
        "xmlschema": {"level": "WARNING"},
    },
}

os.environ.setdefault("LUXMAIL_ENV", MODE)
