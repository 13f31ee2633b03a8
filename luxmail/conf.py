"""Typed access to LuxMail's own settings: where app code reads them (some older modules
still read plain ``settings.LUXMAIL_…``; docs/operations.md says which).

``luxmail/settings.py`` parses each ``LUXMAIL_*`` environment variable once and holds its
default (documented in docs/operations.md "Environment variables"); this module gives
each setting the code tunes at run time a typed function. The functions read
``django.conf.settings`` on every call, never at import, so ``override_settings`` and
pytest-django's ``settings`` fixture take effect. App modules call these instead of
``getattr(settings, "LUXMAIL_…", default)``, which used to repeat (and could drift from)
the default in settings.py; ``luxmail/tests/test_conf.py`` keeps it that way.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

# --- platform -----------------------------------------------------------------------------


def production() -> bool:
    """``LUXMAIL_ENV=production``: configuration problems stop the process."""
    return bool(settings.PRODUCTION)


def redis_url() -> str | None:
    """Redis of the shared cache and the tracking buffer (``LUXMAIL_REDIS_URL``)."""
    return str(settings.REDIS_URL or "") or None


def replica_alias() -> str | None:
    """The database alias report reads go to, or None: everything reads ``default``.

    ``replica`` when ``LUXMAIL_REPLICA_DATABASE_URL`` configured it and
    ``LUXMAIL_REPLICA_READS`` (on by default with the URL) is not switched off.
    """
    if settings.LUXMAIL_REPLICA_READS and "replica" in settings.DATABASES:
        return "replica"
    return None


def proxy_count() -> int:
    """Trusted reverse proxies in front of the web processes (``LUXMAIL_PROXY_COUNT``)."""
    return int(settings.AXES_IPWARE_PROXY_COUNT or 0)


def base_url() -> str:
    """Absolute URL of the site, without a trailing slash."""
    return str(settings.LUXMAIL_BASE_URL or "").rstrip("/")


def dev_outbox() -> bool:
    """The dev Outbox page (``make run`` only; never in production)."""
    return bool(settings.LUXMAIL_DEV_OUTBOX)


def tracking_durability() -> str:
    """``redis-fsync``, ``redis-trusted`` or ``postgres`` (checked by reporting.buffer)."""
    return str(settings.LUXMAIL_TRACKING_DURABILITY)


# --- mail relay and delivery ----------------------------------------------------------------


def smtp_timeout() -> int:
    """SMTP socket timeout, seconds."""
    return int(settings.LUXMAIL_SMTP_TIMEOUT)


def link_check() -> str:
    """How the pre-send check tests links: ``http``, ``http-any`` or ``off``."""
    return str(settings.LUXMAIL_LINK_CHECK)


def presend_cache_seconds() -> int:
    """How long the pre-send check keeps link and DNS answers."""
    return max(int(settings.LUXMAIL_PRESEND_CACHE_SECONDS), 1)


def dns_check() -> bool:
    """Whether the pre-send check looks up SPF/DKIM/DMARC (``LUXMAIL_DNS_RESOLVER`` not off)."""
    return str(settings.LUXMAIL_DNS_RESOLVER or "").strip().lower() != "off"


def dns_resolver() -> tuple[str, int] | None:
    """The DNS server for SPF/DKIM/DMARC checks as (host, port); None: the system's."""
    value = str(settings.LUXMAIL_DNS_RESOLVER or "").strip()
    if not value or value.lower() == "off":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return value.strip("[]"), 53
    return host.strip("[]"), int(port)


def default_quiet_start() -> int:
    """Start hour of a new organization's quiet hours (``LUXMAIL_DEFAULT_QUIET_HOURS``)."""
    return int(str(settings.LUXMAIL_DEFAULT_QUIET_HOURS).partition("-")[0])


def default_quiet_end() -> int:
    """End hour of a new organization's quiet hours (``LUXMAIL_DEFAULT_QUIET_HOURS``)."""
    return int(str(settings.LUXMAIL_DEFAULT_QUIET_HOURS).partition("-")[2])


def smtp_helo_name() -> str | None:
    """The name LuxMail announces in HELO/EHLO when delivering to MX hosts; None: derived."""
    return str(settings.LUXMAIL_SMTP_HELO_NAME or "") or None


def mx_overrides() -> list[str]:
    """Fixed direct-to-MX routes, ``domain=host:port`` entries."""
    return [str(entry) for entry in settings.LUXMAIL_MX_OVERRIDES or []]


def mx_ca_file() -> str | None:
    """CA bundle replacing the system store for MX and MTA-STS certificates."""
    return str(settings.LUXMAIL_MX_CA_FILE or "") or None


# --- send pipeline ---------------------------------------------------------------------------


def send_batch() -> int:
    return max(int(settings.LUXMAIL_SEND_BATCH), 1)


def send_chunk() -> int:
    return max(int(settings.LUXMAIL_SEND_CHUNK), 1)


def send_chains() -> int:
    return max(int(settings.LUXMAIL_SEND_CHAINS), 1)


def send_lease_seconds() -> int:
    return int(settings.LUXMAIL_SEND_LEASE_SECONDS)


def send_max_attempts() -> int:
    return int(settings.LUXMAIL_SEND_MAX_ATTEMPTS)


def send_retry_base_seconds() -> int:
    return int(settings.LUXMAIL_SEND_RETRY_BASE_SECONDS)


def soft_bounce_limit() -> int:
    return int(settings.LUXMAIL_SOFT_BOUNCE_LIMIT)


def soft_bounce_days() -> int:
    return int(settings.LUXMAIL_SOFT_BOUNCE_DAYS)


def autopause_min_messages() -> int:
    return int(settings.LUXMAIL_AUTOPAUSE_MIN_MESSAGES)


def autopause_hard_bounce_percent() -> Decimal:
    return Decimal(str(settings.LUXMAIL_AUTOPAUSE_HARD_BOUNCE_PERCENT))


def autopause_complaint_percent() -> Decimal:
    return Decimal(str(settings.LUXMAIL_AUTOPAUSE_COMPLAINT_PERCENT))


def autopause_provider_blocks() -> int:
    return int(settings.LUXMAIL_AUTOPAUSE_PROVIDER_BLOCKS)


# --- journeys --------------------------------------------------------------------------------


def journey_batch() -> int:
    return max(int(settings.LUXMAIL_JOURNEY_BATCH), 1)


def journey_lease_seconds() -> int:
    return max(int(settings.LUXMAIL_JOURNEY_LEASE_SECONDS), 1)


def journey_trigger_batch() -> int:
    return max(int(settings.LUXMAIL_JOURNEY_TRIGGER_BATCH), 1)


# --- secure-message portal ------------------------------------------------------------------


def portal_code_seconds() -> int:
    """How long a one-time portal code is valid."""
    return int(settings.LUXMAIL_PORTAL_CODE_SECONDS)


def portal_code_interval_seconds() -> int:
    """Shortest interval between two codes for one message."""
    return int(settings.LUXMAIL_PORTAL_CODE_INTERVAL_SECONDS)


def portal_codes_per_hour() -> int:
    return int(settings.LUXMAIL_PORTAL_CODES_PER_HOUR)


def portal_max_attempts() -> int:
    """Wrong codes before access to the message is locked."""
    return int(settings.LUXMAIL_PORTAL_MAX_ATTEMPTS)


def portal_idle_seconds() -> int:
    """Idle limit of a recipient's portal session."""
    return int(settings.LUXMAIL_PORTAL_IDLE_SECONDS)


def portal_attachment_max_bytes() -> int:
    """Largest file a staff reply in the portal may attach."""
    return int(settings.LUXMAIL_PORTAL_ATTACHMENT_MAX_BYTES)


def clamav_address() -> str:
    """clamd's Unix socket path or ``host:port``; empty: attachments are not scanned."""
    return str(settings.LUXMAIL_CLAMAV_ADDRESS or "")


def clamav_timeout_seconds() -> int:
    """How long one ClamAV scan may take before the upload is refused."""
    return int(settings.LUXMAIL_CLAMAV_TIMEOUT_SECONDS)


# --- retention (luxmail/retention.py) ------------------------------------------------------


def retention_batch() -> int:
    """Rows deleted per retention batch, each batch its own transaction."""
    return max(int(settings.LUXMAIL_RETENTION_BATCH), 1)


def retention_max_batches() -> int:
    """Batches one purge may run per retention run; the next run continues."""
    return max(int(settings.LUXMAIL_RETENTION_MAX_BATCHES), 1)


def retention_lock_seconds() -> int:
    """How long a retention run's lock lasts if its process dies mid-run."""
    return max(int(settings.LUXMAIL_RETENTION_SECONDS), 60)


# --- partitions (luxmail/partitions.py) -----------------------------------------------------


def partition_months_ahead() -> int:
    """Monthly partitions kept ready beyond the current month."""
    return max(int(settings.LUXMAIL_PARTITION_MONTHS_AHEAD), 1)


def signup_confirm_hours() -> int:
    return int(settings.LUXMAIL_SIGNUP_CONFIRM_HOURS)


def signup_rate_ip() -> str:
    return str(settings.LUXMAIL_SIGNUP_RATE_IP)


def signup_rate_address() -> str:
    return str(settings.LUXMAIL_SIGNUP_RATE_ADDRESS)


def signup_confirmations_per_day() -> int:
    return int(settings.LUXMAIL_SIGNUP_CONFIRMATIONS_PER_DAY)


# --- staff management (luxmail/staff.py, luxmail/breakglass.py) -------------------------------


def invitation_hours() -> int:
    """How long an invitation link stays valid."""
    return max(int(settings.LUXMAIL_INVITATION_HOURS), 1)


def break_glass_max_minutes() -> int:
    """The longest break-glass PHI access one request may ask for."""
    return max(int(settings.LUXMAIL_BREAK_GLASS_MAX_MINUTES), 5)


def key_rotation_days() -> int:
    """Age after which the compliance dashboard calls a key due for rotation."""
    return max(int(settings.LUXMAIL_KEY_ROTATION_DAYS), 1)


# --- single sign-on (luxmail/accounts/sso/) -------------------------------------------------


def oidc_enabled() -> bool:
    """OpenID Connect sign-in is offered (``LUXMAIL_OIDC_CLIENT_ID`` is set)."""
    return bool(settings.LUXMAIL_OIDC_CLIENT_ID)


def oidc_provider_name() -> str:
    """Shown on the sign-in button: "Sign in with <name>"."""
    return str(settings.LUXMAIL_OIDC_PROVIDER_NAME)


def oidc_groups_claim() -> str:
    return str(settings.LUXMAIL_OIDC_GROUPS_CLAIM)


def oidc_mfa_amr() -> list[str]:
    """ID-token ``amr`` values that mean the IdP checked a second factor."""
    return [str(value) for value in settings.LUXMAIL_OIDC_MFA_AMR or []]


def oidc_mfa_acr() -> list[str]:
    """ID-token ``acr`` values that mean the IdP checked a second factor."""
    return [str(value) for value in settings.LUXMAIL_OIDC_MFA_ACR or []]


def saml_enabled() -> bool:
    """SAML 2.0 sign-in is offered (``LUXMAIL_SAML_IDP_METADATA`` is set)."""
    return bool(settings.LUXMAIL_SAML_IDP_METADATA)


def saml_provider_name() -> str:
    return str(settings.LUXMAIL_SAML_PROVIDER_NAME)


def saml_email_attribute() -> str:
    return str(settings.LUXMAIL_SAML_EMAIL_ATTRIBUTE)


def saml_groups_attribute() -> str:
    return str(settings.LUXMAIL_SAML_GROUPS_ATTRIBUTE)


def saml_mfa_contexts() -> list[str]:
    """AuthnContextClassRef values that mean the IdP checked a second factor."""
    return [str(value) for value in settings.LUXMAIL_SAML_MFA_CONTEXTS or []]


def sso_group_roles() -> dict[str, str]:
    """IdP group -> LuxMail role, from ``LUXMAIL_SSO_GROUP_ROLES`` ("group=Role,…")."""
    mapping: dict[str, str] = {}
    for entry in settings.LUXMAIL_SSO_GROUP_ROLES or []:
        group, sep, role = str(entry).rpartition("=")
        if sep and group.strip() and role.strip():
            mapping[group.strip()] = role.strip()
    return mapping


def sso_create_users() -> bool:
    """SSO may create accounts; off: only staff whose email has an account may sign in."""
    return bool(settings.LUXMAIL_SSO_CREATE_USERS)
