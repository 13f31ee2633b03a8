"""Delivery plans: send at a local time in each recipient's zone, within quiet hours."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, DeliveryPlan
from campaigns.scheduling.local_time import first_local_instant
from campaigns.services.campaigns import campaign_schedule
from campaigns.services.errors import CampaignError, TransitionError
from luxmail import audit
from luxmail.actors import Actor


def delivery_plan_set(
    *,
    campaign: Campaign,
    actor: Actor,
    local_date: dt.date | None,
    local_time: dt.time | None,
    respect_quiet_hours: bool = True,
    request: HttpRequest | None = None,
) -> DeliveryPlan:
    """Record how a draft or scheduled campaign is timed per recipient. A local date
    needs a local time and must still be ahead somewhere on Earth. Audits
    ``campaign.delivery_plan``."""
    if (local_date is None) != (local_time is None):
        raise CampaignError("Give both the local date and the local time, or neither.")
    if local_date is not None and local_time is not None:
        latest = dt.datetime.combine(local_date, local_time, tzinfo=dt.UTC) + dt.timedelta(hours=12)
        if latest <= timezone.now():
            raise CampaignError(
                f"{local_date:%Y-%m-%d} {local_time:%H:%M} has passed in every time zone. "
                "Choose a later date."
            )
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise TransitionError("Only a draft or scheduled campaign can change its timing.")
        plan, _ = DeliveryPlan.objects.update_or_create(
            campaign=locked,
            defaults={
                "local_date": local_date,
                "local_time": local_time,
                "respect_quiet_hours": respect_quiet_hours,
            },
        )
        audit.record(
            "campaign.delivery_plan",
            actor=actor,
            request=request,
            target=locked,
            details={
                "local": f"{local_date} {local_time}" if local_date else None,
                "quiet_hours": respect_quiet_hours,
            },
        )
    return plan


def delivery_plan_schedule(
    *, campaign: Campaign, actor: Actor, request: HttpRequest | None = None
) -> Campaign:
    """Schedule a campaign timed by local time: it starts when the chosen wall-clock time
    first happens anywhere (UTC+14), or now when that moment has passed; each message
    then waits for its recipient's own local time (``campaigns/scheduling/planner.py``).
    """
    plan = DeliveryPlan.objects.filter(campaign=campaign).first()
    if plan is None or plan.local_date is None or plan.local_time is None:
        raise CampaignError("Set a local send date and time first.")
    start = first_local_instant(plan.local_date, plan.local_time)
    at = start if start > timezone.now() else None
    return campaign_schedule(campaign=campaign, actor=actor, at=at, request=request)
