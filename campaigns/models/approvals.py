"""PHI approval: a Compliance Officer's sign-off on what a PHI campaign reads and sends.

The row snapshots what the officer saw (the PHI fields the template reads and the
audience uses, the channel policy, the recipient count) and the SHA-256 of the inputs
that decide what is sent (``campaigns/services/approvals.py``). A change to any of them
withdraws the approval.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from campaigns.models.campaigns import Campaign
from luxmail.models import SecurePolicy


class ApprovalState(models.TextChoices):
    PENDING = "pending", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class CampaignApproval(models.Model):
    """One request for approval of a campaign and its outcome; the newest row counts."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="approvals")
    state = models.CharField(
        max_length=16, choices=ApprovalState.choices, default=ApprovalState.PENDING
    )
    inputs_hash = models.CharField(max_length=64)
    template_phi_fields = models.JSONField(default=list)
    audience_phi_fields = models.JSONField(default=list)
    secure_policy = models.CharField(max_length=32)
    recipients = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("approve_phi_campaign", "Can approve campaigns that use PHI")]

    def __str__(self) -> str:
        return f"approval #{self.pk} of campaign {self.campaign_id}: {self.state}"

    @property
    def secure_policy_label(self) -> str:
        try:
            return str(SecurePolicy(self.secure_policy).label)
        except ValueError:
            return self.secure_policy
