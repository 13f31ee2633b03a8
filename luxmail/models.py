"""Core models: staff users, organization settings, the audit log and API keys.

Models hold fields and constraints only; the logic lives in ``audit.py``,
``accounts/services.py``, ``api/services.py`` and ``org.py``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from luxmail import conf


class User(AbstractUser):
    """A staff member. Roles are Django groups (see ``luxmail/roles.py``)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta(AbstractUser.Meta):  # type: ignore[name-defined]  # django-stubs lacks it
        swappable = "AUTH_USER_MODEL"
        permissions = [
            ("use_app", "Can sign in to the LuxMail UI"),
            ("view_phi", "Can see and use PHI fields"),
            ("export_phi", "Can export PHI columns"),
            ("view_audit", "Can read the audit log"),
            ("manage_settings", "Can change organization settings"),
            ("manage_api_keys", "Can create and revoke API keys"),
            ("manage_staff", "Can invite staff, assign roles, reset MFA and end sessions"),
        ]


class SecurePolicy(models.TextChoices):
    TLS_OR_BETTER = "tls_or_better", "Enforced TLS or better (S/MIME, PGP, portal fallback)"
    END_TO_END_OR_PORTAL = "end_to_end_or_portal", "End-to-end (S/MIME, PGP) or portal"
    PORTAL_ONLY = "portal_only", "Secure portal only"
    OPPORTUNISTIC = "opportunistic", "Opportunistic TLS (templates without PHI only)"


class DeliveryMode(models.TextChoices):
    RELAY = "relay", "Through the configured relay"
    DIRECT = "direct", "Directly to each recipient's mail servers (MX)"


def default_quiet_start() -> int:
    """A new organization's quiet hours (``LUXMAIL_DEFAULT_QUIET_HOURS``; 21-8, none in
    the test suite)."""
    return conf.default_quiet_start()


def default_quiet_end() -> int:
    return conf.default_quiet_end()


class OrgSettings(models.Model):
    """The organization's settings: one row (pk=1), edited by Admins, every change audited."""

    name = models.CharField(max_length=200, default="LuxMail Demo Health")
    postal_address = models.TextField(
        default="100 Main Street, Springfield, ST 00000",
        help_text="Printed in every marketing email (CAN-SPAM).",
    )
    footer_text = models.TextField(
        blank=True,
        default="You are receiving this email because you are a patient of our practice. "
        "This message is not medical advice; in an emergency call 911.",
        max_length=2000,
        help_text="Legal text of the locked footer every visual-editor and library template "
        "carries (org.footer_text). Never put patient information here.",
    )
    default_secure_policy = models.CharField(
        max_length=32, choices=SecurePolicy.choices, default=SecurePolicy.TLS_OR_BETTER
    )
    exclude_automated_events = models.BooleanField(
        default=True,
        help_text="Reports count only human opens and clicks; the event log keeps all.",
    )
    count_unknown_events = models.BooleanField(
        default=True,
        help_text="When automated events are excluded, still count events classified 'unknown'.",
    )
    require_passkey_for_admins = models.BooleanField(
        default=False, help_text="Admins must register a passkey (WebAuthn) to sign in."
    )
    require_passkey_for_phi_roles = models.BooleanField(
        default=False,
        help_text="Everyone in a role that may see PHI (Admin, PHI Marketer) must register "
        "a passkey (WebAuthn) and verify with it to sign in.",
    )
    portal_expiry_days = models.PositiveIntegerField(
        default=30, help_text="Secure portal messages expire after this many days."
    )
    delivery_mode = models.CharField(
        max_length=16,
        choices=DeliveryMode.choices,
        default=DeliveryMode.RELAY,
        help_text="Relay: every message goes through the configured SMTP relay (verified "
        "TLS). Direct: LuxMail looks up each domain's MX and requires verified STARTTLS "
        "(MTA-STS honoured) before sending anything with PHI.",
    )
    relay_enforces_tls = models.BooleanField(
        default=False,
        help_text="Declare only when the relay's operator guarantees it delivers onward "
        "exclusively over verified TLS. Then 'Enforced TLS or better' may use the relay; "
        "otherwise PHI goes by S/MIME, PGP or the secure portal.",
    )
    encrypted_subject = models.CharField(
        max_length=200,
        default="Secure message",
        help_text="Subject shown outside S/MIME and PGP messages whose template uses PHI "
        "(the real subject travels inside, encrypted).",
    )
    portal_notification_subject = models.CharField(
        max_length=200,
        default="You have a new secure message",
        help_text="Subject of the portal notice. Never put patient information here.",
    )
    portal_notification_text = models.TextField(
        default="A secure message is waiting for you. Open the link below and confirm it is "
        "you with a one-time code that we email to this address.",
        help_text="Text of the portal notice, before the link. Never put patient information here.",
    )
    seed_addresses = models.TextField(
        blank=True,
        default="",
        help_text="Seed list: the organization's own addresses that receive test sends from a "
        "campaign's review page, one per line (at most 10).",
    )
    portal_require_dob = models.BooleanField(
        default=False,
        help_text="Recipients also confirm their date of birth before reading a portal "
        "message (when a date of birth is on file).",
    )
    message_retention_days = models.PositiveIntegerField(
        default=730, help_text="Delivery records (no content) are kept this long."
    )
    event_retention_days = models.PositiveIntegerField(
        default=730, help_text="Raw open and click events are kept this long."
    )
    bounce_retention_days = models.PositiveIntegerField(
        default=730, help_text="Bounce and complaint records (no addresses) are kept this long."
    )
    import_retention_days = models.PositiveIntegerField(
        default=90,
        help_text="Finished contact imports (counts and row errors, no values) are kept this "
        "long; their uploaded files are deleted as soon as the import ends.",
    )
    portal_retention_days = models.PositiveIntegerField(
        default=180,
        help_text="Secure portal messages (bodies and replies) are deleted this long after "
        "they expire.",
    )
    contact_default_time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA time zone of contacts who have none, for local-time sends and quiet "
        "hours (empty: the organization's time zone).",
    )
    quiet_hours_start = models.PositiveSmallIntegerField(
        default=default_quiet_start,
        validators=[MaxValueValidator(23)],
        help_text="Hour (0-23, recipient's local time) from which no marketing is delivered.",
    )
    quiet_hours_end = models.PositiveSmallIntegerField(
        default=default_quiet_end,
        validators=[MaxValueValidator(23)],
        help_text="Hour (0-23, recipient's local time) at which marketing may go out again. "
        "The same hour as the start means no quiet hours.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "organization settings"
        verbose_name_plural = "organization settings"
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="orgsettings_singleton")
        ]

    def __str__(self) -> str:
        return self.name


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained audit log (``luxmail/audit.py``).

    ``hash`` = SHA-256 over the canonical JSON of the other fields and ``prev_hash``.
    On PostgreSQL a trigger rejects UPDATE and DELETE (migration 0002).
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    phi = models.BooleanField(default=False)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_label}"


class ApiKey(models.Model):
    """An integration credential. Only the SHA-256 of the secret is stored."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class HoldScope(models.TextChoices):
    ORGANIZATION = "organization", "The whole organization"
    CAMPAIGN = "campaign", "One campaign"
    CONTACT = "contact", "One contact"


class LegalHold(models.Model):
    """A legal hold: while it is active (``released_at`` is null) no retention purge
    deletes anything it covers (``luxmail/retention.py``).

    ``scope`` says what is held; ``object_id`` is the campaign's or contact's id (0 for
    the organization). Holds are never deleted: releasing one stamps ``released_at``.
    ``reason`` is free text written by staff and must not contain PHI (the form says so).
    Writes: ``luxmail/holds.py`` (audited).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    scope = models.CharField(max_length=16, choices=HoldScope.choices)
    object_id = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    release_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["scope", "object_id"],
                name="legalhold_active",
                condition=models.Q(released_at__isnull=True),
            )
        ]
        permissions = [("manage_legal_hold", "Can place and release legal holds")]

    def __str__(self) -> str:
        return f"Legal hold #{self.pk} on {self.scope} {self.object_id or ''}".rstrip()

    @property
    def active(self) -> bool:
        return self.released_at is None


class Notification(models.Model):
    """Something an Admin should look at (e.g. a campaign that paused itself).

    Organization-wide (one deployment per organization): every staff member sees the same
    list, but each has their own read state (:class:`NotificationRead`). ``title`` is a
    sentence without PHI; ``link`` a path inside LuxMail.
    """

    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=300)
    link = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class NotificationRead(models.Model):
    """One staff member has read one notification (``luxmail/notifications.py``).

    Read state is per person: one Admin reading a notification leaves it unread for the
    others. No row means unread.
    """

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "notification"], name="notification_read_once")
        ]

    def __str__(self) -> str:
        return f"Notification {self.notification_id} read by {self.user_id}"


class NotificationPreference(models.Model):
    """Which notification kinds a staff member also wants by e-mail (``luxmail/notifications.py``).

    The in-app list always shows every notification; e-mail is opt-in per kind.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email_kinds = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Notification preferences of {self.user_id}"


class Invitation(models.Model):
    """An invitation to join as staff (``luxmail/staff.py``).

    The link carries a signed value naming this row and a random secret; only the
    secret's SHA-256 is stored. Single use (``accepted_at``), expiring (``expires_at``)
    and revocable (``revoked_at``). ``roles`` lists role (group) names.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField()
    roles = models.JSONField(default=list)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Invitation #{self.pk}"


class BreakGlassGrant(models.Model):
    """Time-limited PHI access a user asked for in an emergency (``luxmail/breakglass.py``).

    Active while ``revoked_at`` is null and ``expires_at`` is in the future; then the
    user holds ``luxmail.view_phi`` (``BreakGlassPermissionBackend``) and every PHI
    audit event they cause carries ``details["break_glass"]`` = this grant's id.
    ``justification`` is written by staff and must not contain PHI (the form says so).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    justification = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Stamped once by the expiry sweep, which audits ``breakglass.expire``.
    expiry_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["user", "expires_at"],
                name="breakglass_open",
                condition=models.Q(revoked_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"Break-glass grant #{self.pk}"


class StaffSession(models.Model):
    """Which (database) session belongs to which staff user, written at sign-in.

    Lets an Admin list a user's sessions and end them (``luxmail/staff.py``): ending a
    session deletes its row in ``django_session``, which signs the browser out.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"session of user {self.user_id}"
