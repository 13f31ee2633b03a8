"""``{% delivery_curve campaign %}`` and ``{% timing_links campaign %}``: the planned
delivery curve (messages per hour, computed by ``campaigns/scheduling/planner.py``) and
the campaign's A/B test and local-time status, for the campaign pages."""

from __future__ import annotations

from typing import Any

from django import template

from campaigns.models import ABTest, ABVariant, Campaign, DeliveryPlan
from campaigns.scheduling import planner

register = template.Library()

# The curve table shows at most this many hours (a throttled send can span days).
MAX_HOURS_SHOWN = 72


@register.inclusion_tag("campaigns/_delivery_curve.html")
def delivery_curve(campaign: Campaign) -> dict[str, Any]:
    hours = planner.planned_curve(campaign)
    peak = max((n for _, n in hours), default=0)
    return {
        "hours": hours[:MAX_HOURS_SHOWN],
        "more": max(0, len(hours) - MAX_HOURS_SHOWN),
        "peak": peak,
        "total": sum(n for _, n in hours),
        "throttle": campaign.throttle_per_minute,
    }


@register.inclusion_tag("campaigns/_timing_links.html", takes_context=True)
def timing_links(context: Any, campaign: Campaign) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "perms": context.get("perms"),
        "test": ABTest.objects.filter(campaign=campaign).first(),
        "variant": ABVariant.objects.filter(campaign=campaign).select_related("test").first(),
        "plan": DeliveryPlan.objects.filter(campaign=campaign).first(),
    }
