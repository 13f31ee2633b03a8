"""Campaigns: the lifecycle and audience of one send."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from campaigns.models.content import EmailTemplate
from campaigns.models.senders import SenderIdentity
from luxmail.models import SecurePolicy


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
    preheader = models.CharField(
        max_length=200,
        blank=True,
        help_text="Preview text inbox lists show after the subject (plain text, no PHI).",
    )
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
    # Set when the campaign paused itself on its bounce/complaint rates (sender health):
    # the sentence shown on the campaign page; resuming needs an explicit confirmation.
    auto_pause_reason = models.CharField(max_length=300, blank=True)
    auto_paused_at = models.DateTimeField(null=True, blank=True)
    # Rates for auto-pause count from here (set on a confirmed resume).
    health_baseline_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("send_campaign", "Can schedule, send, pause and cancel campaigns"),
            ("export_evidence", "Can download a campaign's evidence pack"),
        ]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_due")]

    def __str__(self) -> str:
        return self.name
