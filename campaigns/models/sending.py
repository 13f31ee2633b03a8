"""Sending: one message per recipient, send chains and bounce records."""

from __future__ import annotations

from django.db import models

from campaigns.models.campaigns import Campaign


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


# Percent of each page of ``campaigns_message`` (every monthly partition) that inserts
# fill: messages are queued in bulk, so without it every page is full and the claim's
# lease write — the first of a message's three updates — can never be a HOT update,
# which needs room on the row's own page.
MESSAGE_FILLFACTOR = 80


class Message(models.Model):
    """One recipient of one campaign. Holds ids, states and SMTP outcomes, never content.

    ``claim_token``/``lease_until`` belong to the worker batch that claimed the row;
    ``smtp_reply`` is stored with e-mail addresses redacted.
    """

    id = models.BigAutoField(primary_key=True)
    # No single-column indexes on the foreign keys: ``message_campaign_state`` and
    # ``message_contact`` lead with them. Every state change of a message is a non-HOT
    # update that writes an entry into each index, three times per message sent.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    contact = models.ForeignKey(
        "contacts.Contact", null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
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
            # Rows in flight (``sending``) per campaign, for the recovery sweep. Keyed on
            # a column no lease write changes: a claim or a lease renewal then changes
            # no indexed column, and is a HOT update when the page has room (see
            # MESSAGE_FILLFACTOR) — no new entry in any of the five indexes.
            models.Index(
                fields=["campaign"],
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
    slots, so a campaign never has more chains than slots (campaigns/sending/queue.py).
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
    """A refusal or complaint about one message (no addresses; diagnostic redacted).

    ``reason``/``scope``/``rule`` are the classification (``campaigns.sending.feedback``
    types) and its evidence; the recipient is kept only as its domain and a keyed hash
    (``recipient_hash``: the same address always gives the same hash, and the hash
    cannot be reversed without the deployment's keys).
    """

    message = models.ForeignKey(
        Message,
        null=True,
        on_delete=models.SET_NULL,
        related_name="bounces",
        db_constraint=False,  # messages are partitioned (luxmail/partitions.py)
    )
    contact = models.ForeignKey(
        "contacts.Contact", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sender = models.ForeignKey(
        "campaigns.SenderIdentity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sending_domain = models.CharField(max_length=253, blank=True)
    kind = models.CharField(max_length=10, choices=BounceKind.choices)
    status = models.CharField(max_length=16, blank=True, help_text="RFC 3463 status, e.g. 5.1.1.")
    reason = models.CharField(max_length=32, blank=True)
    scope = models.CharField(max_length=32, blank=True)
    rule = models.CharField(max_length=120, blank=True, help_text="The rule that matched.")
    provider = models.CharField(max_length=253, blank=True)
    feedback_format = models.CharField(max_length=32, blank=True)
    recipient_domain = models.CharField(max_length=253, blank=True)
    recipient_hash = models.CharField(max_length=32, blank=True)
    diagnostic = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16, help_text="smtp (bounce server) or api.")
    suppressed = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["contact", "kind"], name="bounce_contact_kind"),
            models.Index(fields=["campaign", "kind"], name="bounce_campaign_kind"),
            models.Index(fields=["sending_domain", "received_at"], name="bounce_domain_time"),
            models.Index(fields=["reason", "received_at"], name="bounce_reason_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} bounce #{self.pk}"
