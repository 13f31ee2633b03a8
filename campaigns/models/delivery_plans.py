"""When each recipient of a campaign may receive it: local time and quiet hours."""

from __future__ import annotations

import datetime as dt

from django.db import models

from campaigns.models.campaigns import Campaign


class DeliveryPlan(models.Model):
    """A campaign's per-recipient timing. Without one, a campaign sends at once.

    ``local_date``/``local_time``: deliver at that wall-clock time in each recipient's
    time zone (the organization's default zone for contacts without one). With
    ``respect_quiet_hours`` no message goes out during the organization's quiet hours in
    the recipient's zone; it waits for their end.
    """

    campaign = models.OneToOneField(
        Campaign, on_delete=models.CASCADE, related_name="delivery_plan"
    )
    local_date = models.DateField(null=True, blank=True)
    local_time = models.TimeField(null=True, blank=True, default=dt.time(9, 0))
    respect_quiet_hours = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Delivery plan of campaign #{self.campaign_id}"

    @property
    def by_local_time(self) -> bool:
        return self.local_date is not None and self.local_time is not None
