"""Templates, sender identities, campaigns, messages and bounce records.

Models hold fields and constraints; the logic lives in ``campaigns/services.py`` (writes),
``campaigns/selectors.py`` (reads), ``campaigns/delivery.py`` (the send pipeline) and
``campaigns/bounces.py``. See docs/architecture.md "Sending pipeline".
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from luxmail.crypto import EncryptedField
from luxmail.models import SecurePolicy


class EmailTemplate(models.Model):
    """A campaign template: Jinja2 subject, HTML and optional text (campaigns/templating.py)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=998)
    html = models.TextField()
    text = models.TextField(
        blank=True, help_text="Plain-text part; generated from the HTML when left empty."
    )
    phi_bearing = models.BooleanField(
        default=False, editable=False, help_text="Uses phi.* fields (set on save)."
    )
    uses_unsubscribe = models.BooleanField(default=False, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DkimAlgorithm(models.TextChoices):
    RSA = "rsa-sha256", "RSA-2048 (rsa-sha256)"
    ED25519 = "ed25519-sha256", "Ed25519 (ed25519-sha256)"


class SenderIdentity(models.Model):
    """Who a campaign is from, and the DKIM key that signs it (private key encrypted)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True, help_text="Shown in LuxMail only.")
    from_name = models.CharField(max_length=200)
    from_email = models.EmailField()
    reply_to = models.EmailField(blank=True)
    postal_address = models.TextField(
        blank=True, help_text="Printed in every message; the organization's address if empty."
    )
    dkim_domain = models.CharField(max_length=253, blank=True)
    dkim_selector = models.CharField(max_length=63, blank=True)
    dkim_algorithm = models.CharField(max_length=16, choices=DkimAlgorithm.choices, blank=True)
    dkim_private_key = EncryptedField(kind="bytes", phi=False)
    dkim_public_key = models.TextField(blank=True, help_text="Base64 p= value of the TXT record.")
    dkim_created_at = models.DateTimeField(null=True, blank=True)
    bounce_domain = models.CharField(
        max_length=253,
        blank=True,
        help_text="Domain of the VERP return path (bounces+token@domain); the DKIM domain "
        "when empty.",
    )
    allow_without_dkim = models.BooleanField(
        default=False, help_text="Admins only: allow sending although no DKIM key exists."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "sender identities"

    def __str__(self) -> str:
        return self.name

    @property
    def has_dkim(self) -> bool:
        return bool(self.dkim_private_key and self.dkim_selector and self.dkim_domain)


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"


class Campaign(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    marketing_id = models.CharField(
        max_length=100, blank=True, help_text="Free tag used by reports (e.g. FLU-2026-Q4)."
    )
    report_field = models.CharField(
        max_length=200, blank=True, help_text="Custom value carried into reports and exports."
    )
    template = models.ForeignKey(
        EmailTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    sender = models.ForeignKey(
        SenderIdentity,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
    )
    segments = models.ManyToManyField("contacts.Segment", blank=True, related_name="+")
    lists = models.ManyToManyField("contacts.ContactList", blank=True, related_name="+")
    exclude_segments = models.ManyToManyField("contacts.Segment", blank=True, related_name="+")
    exclude_lists = models.ManyToManyField("contacts.ContactList", blank=True, related_name="+")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    throttle_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Messages per minute; empty means as fast as possible."
    )
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)
    secure_policy = models.CharField(max_length=32, choices=SecurePolicy.choices)
    encrypted_subject_visible = models.BooleanField(
        default=False,
        help_text="Show the real subject outside S/MIME and PGP mail even when the template "
        "uses PHI (otherwise a generic subject is shown and the real one is inside).",
    )
    # One message sent through POST /api/v1/messages/ (an appointment reminder from an
    # EHR): a campaign of one, kept out of the campaign lists.
    transactional = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    # The template as it was when sending started (edits afterwards do not change it).
    frozen_subject = models.TextField(blank=True)
    frozen_html = models.TextField(blank=True)
    frozen_text = models.TextField(blank=True)
    frozen_phi_bearing = models.BooleanField(default=False)
    recipients = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_batch_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("send_campaign", "Can schedule, send, pause and cancel campaigns")]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_due")]

    def __str__(self) -> str:
        return self.name


class MessageState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DEFERRED = "deferred", "Deferred (will retry)"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"
    UNKNOWN = "unknown", "Unknown (worker lost; check before resending)"
    SKIPPED = "skipped", "Skipped (suppressed or unsubscribed since start)"
    CANCELLED = "cancelled", "Cancelled"


class Message(models.Model):
    """One recipient of one campaign. Holds ids, states and SMTP outcomes, never content.

    ``claim_token``/``lease_until`` belong to the worker batch that claimed the row;
    ``smtp_reply`` is stored with e-mail addresses redacted.
    """

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    contact = models.ForeignKey(
        "contacts.Contact", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(
        max_length=12, choices=MessageState.choices, default=MessageState.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claim_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    smtp_reply = models.CharField(max_length=500, blank=True)
    channel = models.CharField(max_length=16, blank=True)
    channel_reason = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["campaign", "state"], name="message_campaign_state"),
            models.Index(
                fields=["campaign", "id"],
                name="message_claimable",
                condition=models.Q(state__in=["queued", "deferred"]),
            ),
            models.Index(
                fields=["lease_until"],
                name="message_in_flight",
                condition=models.Q(state="sending"),
            ),
            models.Index(fields=["contact"], name="message_contact"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact"], name="message_one_per_contact")
        ]

    def __str__(self) -> str:
        return f"Message #{self.pk} ({self.state})"


class SendChain(models.Model):
    """One dispatch chain slot of a sending campaign: ``slot`` in ``range(concurrency)``.

    A chain task holds its slot through ``token`` (a fencing token) until
    ``lease_until``; it renews the lease while it works and exits as soon as its token
    is superseded. Resume and the recovery sweep only start chains for free or expired
    slots, so a campaign never has more chains than slots (campaigns/queue.py).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    slot = models.PositiveSmallIntegerField()
    token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "slot"], name="sendchain_one_per_slot")
        ]

    def __str__(self) -> str:
        return f"Chain {self.slot} of campaign #{self.campaign_id}"


class BounceKind(models.TextChoices):
    HARD = "hard", "Hard bounce"
    SOFT = "soft", "Soft bounce"
    COMPLAINT = "complaint", "Complaint"


class BounceEvent(models.Model):
    """A DSN or ARF report about one message (no addresses; diagnostic redacted)."""

    message = models.ForeignKey(
        Message, null=True, on_delete=models.SET_NULL, related_name="bounces"
    )
    contact = models.ForeignKey(
        "contacts.Contact", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=BounceKind.choices)
    status = models.CharField(max_length=16, blank=True, help_text="RFC 3463 status, e.g. 5.1.1.")
    diagnostic = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16, help_text="smtp (bounce server) or api.")
    suppressed = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["contact", "kind"], name="bounce_contact_kind")]

    def __str__(self) -> str:
        return f"{self.kind} bounce #{self.pk}"


# Journeys (issue 7) live in their own package; importing them here registers them with
# the campaigns app (docs/architecture.md "Journeys").
from campaigns.journeys.models import *  # noqa: E402, F403


class SigningKind(models.TextChoices):
    SMIME = "smime", "S/MIME certificate"
    PGP = "pgp", "OpenPGP key"


class OrgSigningKey(models.Model):
    """The organization's optional key that signs every S/MIME or PGP/MIME message.

    One per kind. The private key is stored encrypted with the key ring (S/MIME: PKCS#8
    PEM without a passphrase; OpenPGP: the armored secret key as uploaded, with its
    passphrase encrypted beside it). Set and removed through ``campaigns/services.py``.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=8, choices=SigningKind.choices, unique=True)
    private_key = EncryptedField(kind="bytes", phi=False)
    passphrase = EncryptedField(kind="text", phi=False)
    # S/MIME: the certificate and its chain (PEM); OpenPGP: the public key (armored).
    public = models.TextField()
    fingerprint = models.CharField(max_length=128)
    identity = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.fingerprint[:16]}"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
