"""Pre-send check overrides: an Admin's audited decision to schedule despite failing items.

The check itself is computed, never stored (``campaigns/services/presend.py``); an
override records which failing items the Admin saw, so a new failure blocks again.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from campaigns.models.campaigns import Campaign


class PresendOverride(models.Model):
    """An Admin let a campaign be scheduled although these check items failed."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="presend_overrides"
    )
    items = models.JSONField(default=list, help_text="Keys of the failing items overridden.")
    note = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"pre-send override #{self.pk} of campaign {self.campaign_id}"
