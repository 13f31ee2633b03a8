"""Campaign events that become notifications (``luxmail/notifications.py``).

Connected in ``CampaignsConfig.ready()`` as ``post_save`` receivers, so the services
that finish campaigns and open approval requests stay unaware of notifications:

* ``campaign_finished``: a campaign saved as ``sent`` with its ``finished_at`` (only
  :func:`campaigns.services.campaigns.campaign_finish_if_done` does that), except the
  hidden campaigns of API messages and journey steps, which finish over and over;
* ``approval_requested``: a new pending :class:`~campaigns.models.CampaignApproval`.

Titles name the campaign (its name is not PHI) and nothing else.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.urls import reverse

from campaigns.models import (
    ApprovalState,
    Campaign,
    CampaignApproval,
    CampaignStatus,
    JourneyStepCampaign,
)
from luxmail import notifications


def _campaign_saved(sender: Any, instance: Campaign, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields") or ()
    if "finished_at" not in update_fields or instance.status != CampaignStatus.SENT:
        return
    if instance.transactional:  # API messages "finish" continuously; not news
        return
    if JourneyStepCampaign.objects.filter(campaign_id=instance.pk).exists():
        return  # a journey step's hidden campaign finishes after every round
    notifications.notify(
        kind="campaign_finished",
        title=f"Campaign “{instance.name[:120]}” finished sending.",
        link=reverse("campaigns:detail", args=[instance.pk]),
    )


def _approval_saved(sender: Any, instance: CampaignApproval, created: bool, **kwargs: Any) -> None:
    if not created or instance.state != ApprovalState.PENDING:
        return
    campaign = instance.campaign
    notifications.notify(
        kind="approval_requested",
        title=f"Campaign “{campaign.name[:120]}” waits for PHI approval.",
        link=reverse("campaigns:approval", args=[campaign.pk]),
    )


def connect() -> None:
    post_save.connect(_campaign_saved, sender=Campaign, dispatch_uid="campaigns.notify.finished")
    post_save.connect(
        _approval_saved, sender=CampaignApproval, dispatch_uid="campaigns.notify.approval"
    )
