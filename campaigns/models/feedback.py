"""Feedback effects: the suppression policy, sender-health evidence and mail not yet read."""

from __future__ import annotations

import uuid

from django.db import models

from luxmail.crypto import EncryptedField


class FeedbackPolicy(models.Model):
    """The organization's suppression and auto-pause policy: one row (pk=1), edited by
    Admins (audited). Defaults come from the ``LUXMAIL_*`` settings (docs/operations.md
    "Bounces, complaints and sender health")."""

    soft_bounce_limit = models.PositiveSmallIntegerField(
        help_text="Recipient-transient bounces (mailbox full, suspended) that suppress."
    )
    soft_bounce_days = models.PositiveSmallIntegerField(help_text="… within this many days.")
    # Per-reason overrides for recipient reasons: {"mailbox_full": "never", …}; values
    # "suppress" (at once), "count" (after the soft-bounce limit) or "never". Sender-side
    # and transient reasons never suppress, whatever this says.
    reason_actions = models.JSONField(default=dict, blank=True)
    autopause_min_messages = models.PositiveIntegerField(
        help_text="Auto-pause looks at a campaign's rates only after this many messages."
    )
    autopause_hard_bounce_percent = models.DecimalField(max_digits=5, decimal_places=2)
    autopause_complaint_percent = models.DecimalField(max_digits=5, decimal_places=3)
    autopause_provider_blocks = models.PositiveIntegerField(
        help_text="Sender-side refusals from one receiving provider that pause a campaign."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "feedback policy"
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="feedbackpolicy_singleton")
        ]

    def __str__(self) -> str:
        return "Feedback policy"


class SenderEventKind(models.TextChoices):
    BLOCK = "block", "Sender-side refusal"
    AUTH_FAILURE_REPORT = "auth_failure_report", "Authentication-failure report (RFC 6591)"
    DMARC_REPORT = "dmarc_report", "DMARC aggregate report"


class SenderEvent(models.Model):
    """Sender-health evidence: a receiver refused *us*, or reported on our authentication.

    Never a complaint and never suppresses anyone. No addresses; detail redacted.
    """

    kind = models.CharField(max_length=24, choices=SenderEventKind.choices)
    sender = models.ForeignKey(
        "campaigns.SenderIdentity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sending_domain = models.CharField(max_length=253, blank=True)
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(max_length=253, blank=True)
    reason = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, blank=True)
    rule = models.CharField(max_length=120, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["sending_domain", "received_at"], name="senderevent_domain")
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class UnparsedState(models.TextChoices):
    PENDING = "pending", "Not read yet"
    REPROCESSED = "reprocessed", "Reprocessed"
    DISCARDED = "discarded", "Discarded"


class UnparsedFeedback(models.Model):
    """A mail sent to the bounce address that LuxMail could not read (never refused).

    The body is kept encrypted (it may quote a patient's message) so an operator can
    reprocess it after a parser upgrade; identical mails are counted on one row.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    body = EncryptedField(kind="bytes")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the body.")
    size = models.PositiveIntegerField()
    source = models.CharField(max_length=16)
    # VERP token of the envelope recipient (signed ids, no PHI): binds a reprocess.
    envelope_tokens = models.JSONField(default=list, blank=True)
    received_count = models.PositiveIntegerField(default=1)
    first_received_at = models.DateTimeField(auto_now_add=True)
    last_received_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(
        max_length=12, choices=UnparsedState.choices, default=UnparsedState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-last_received_at", "-id"]
        verbose_name_plural = "unparsed feedback"

    def __str__(self) -> str:
        return f"Unparsed feedback #{self.pk}"
