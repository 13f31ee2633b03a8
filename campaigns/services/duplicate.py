"""Duplicate a campaign as a new draft."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from campaigns.models import Campaign
from campaigns.services.errors import CampaignError, _user
from luxmail import audit
from luxmail.actors import Actor

# What a copy carries: the settings a marketer chose, never the send's state (status,
# frozen content, counts, times, approvals, pre-send overrides).
_COPIED = (
    "marketing_id",
    "report_field",
    "template_id",
    "sender_id",
    "preheader",
    "throttle_per_minute",
    "track_opens",
    "track_clicks",
    "secure_policy",
    "encrypted_subject_visible",
)
_AUDIENCE = ("segments", "lists", "exclude_segments", "exclude_lists")
NAME_LIMIT = 200


def _copy_name(name: str) -> str:
    base = f"Copy of {name}"[:NAME_LIMIT]
    if not Campaign.objects.filter(name=base).exists():
        return base
    for n in range(2, 1000):
        candidate = f"{base[: NAME_LIMIT - 6]} ({n})"
        if not Campaign.objects.filter(name=candidate).exists():
            return candidate
    return base


def campaign_duplicate(
    *, campaign: Campaign, actor: Actor, request: HttpRequest | None = None
) -> Campaign:
    """A new draft with ``campaign``'s settings and audience (any status may be copied).

    Journey-step and transactional campaigns are not copied (they belong to their
    journey or API call). Audits ``campaign.duplicate`` with the source id.
    """
    if campaign.transactional or hasattr(campaign, "journey_step"):
        raise CampaignError("Journey and transactional messages cannot be duplicated.")
    with transaction.atomic():
        copy = Campaign(name=_copy_name(campaign.name), created_by=_user(actor))
        for field in _COPIED:
            setattr(copy, field, getattr(campaign, field))
        copy.save()
        for relation in _AUDIENCE:
            getattr(copy, relation).set(getattr(campaign, relation).all())
        audit.record(
            "campaign.duplicate",
            actor=actor,
            request=request,
            target=copy,
            details={"source_id": campaign.pk},
        )
    return copy
