"""Sender health: bounce and complaint rates per sender identity and sending domain,
and the campaign auto-pause that protects the organization's reputation.

A sending campaign pauses itself (:func:`campaign_check`, after every bounce or
complaint) when, counted from its start or its last confirmed resume:

* at least ``autopause_min_messages`` messages went out and the hard-bounce rate is
  above ``autopause_hard_bounce_percent`` or the complaint rate above
  ``autopause_complaint_percent``; or
* one receiving provider refused it for sender-side reasons (blocklist, DMARC, …)
  ``autopause_provider_blocks`` times.

The reason is stored on the campaign (shown on its page; resuming needs a
confirmation), audited as ``campaign.auto_paused``, and Admins are notified in the app
and through the ``campaign_auto_paused`` webhook event (registered by reporting).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from campaigns.models import (
    BounceEvent,
    BounceKind,
    Campaign,
    CampaignStatus,
    FeedbackPolicy,
    Message,
    MessageState,
    SenderEvent,
    SenderEventKind,
    SenderIdentity,
)
from campaigns.sending import hooks, policy
from luxmail import audit, notifications

ATTEMPTED = (MessageState.SENT, MessageState.BOUNCED, MessageState.FAILED, MessageState.UNKNOWN)


@dataclass
class Rates:
    attempted: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    blocks_by_provider: list[tuple[str, int]] = field(default_factory=list)

    @property
    def hard_percent(self) -> Decimal:
        return _percent(self.hard, self.attempted)

    @property
    def complaint_percent(self) -> Decimal:
        return _percent(self.complaints, self.attempted)


def _percent(part: int, whole: int) -> Decimal:
    if not whole:
        return Decimal(0)
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.001"))


def campaign_rates(campaign: Campaign) -> Rates:
    since = campaign.health_baseline_at
    messages = Message.objects.filter(campaign=campaign, state__in=ATTEMPTED)
    events = BounceEvent.objects.filter(campaign=campaign)
    blocks = SenderEvent.objects.filter(campaign=campaign, kind=SenderEventKind.BLOCK)
    if since is not None:
        messages = messages.filter(Q(finished_at__gte=since) | Q(finished_at__isnull=True))
        events = events.filter(received_at__gte=since)
        blocks = blocks.filter(received_at__gte=since)
    counts = events.aggregate(
        hard=Count("message", filter=Q(kind=BounceKind.HARD), distinct=True),
        soft=Count("message", filter=Q(kind=BounceKind.SOFT), distinct=True),
        complaints=Count("message", filter=Q(kind=BounceKind.COMPLAINT), distinct=True),
    )
    by_provider = list(
        blocks.values_list("provider").annotate(n=Count("id")).order_by("-n", "provider")[:5]
    )
    return Rates(
        attempted=messages.count(),
        hard=counts["hard"],
        soft=counts["soft"],
        complaints=counts["complaints"],
        blocks_by_provider=[(p or "unknown", n) for p, n in by_provider],
    )


def breach(rates: Rates, row: FeedbackPolicy) -> str:
    """Why these rates pause a campaign (a sentence without PHI), or ``""``."""
    if rates.attempted >= row.autopause_min_messages:
        if rates.hard_percent > row.autopause_hard_bounce_percent:
            return (
                f"Hard-bounce rate {rates.hard_percent:.1f} % after {rates.attempted} messages "
                f"is above {row.autopause_hard_bounce_percent} %."
            )
        if rates.complaint_percent > row.autopause_complaint_percent:
            return (
                f"Complaint rate {rates.complaint_percent:.2f} % after {rates.attempted} "
                f"messages is above {row.autopause_complaint_percent} %."
            )
    for provider, count in rates.blocks_by_provider:
        if count >= row.autopause_provider_blocks:
            return (
                f"{provider} refused {count} messages for sender-side reasons (blocklist, "
                f"authentication or content); the limit is {row.autopause_provider_blocks}."
            )
    return ""


def campaign_check(*, campaign_id: int) -> str:
    """Pause a sending campaign whose rates breach the policy; returns the reason or ""."""
    campaign = Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).first()
    if campaign is None:
        return ""
    reason = breach(campaign_rates(campaign), policy.current())
    if reason:
        campaign_auto_pause(campaign_id=campaign_id, reason=reason)
    return reason


def campaign_auto_pause(*, campaign_id: int, reason: str) -> bool:
    """sending → paused by LuxMail itself, with the reason kept for the campaign page.

    Audits ``campaign.auto_paused``, notifies Admins in the app and, after commit, the
    registered feedback listeners (reporting's ``campaign_auto_paused`` webhook event).
    Returns False when the campaign was no longer sending.
    """
    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status != CampaignStatus.SENDING:
            return False
        campaign.status = CampaignStatus.PAUSED
        campaign.auto_pause_reason = reason[:300]
        campaign.auto_paused_at = now
        campaign.save(update_fields=["status", "auto_pause_reason", "auto_paused_at", "updated_at"])
        audit.record(
            "campaign.auto_paused", actor=None, target=campaign, details={"reason": reason[:200]}
        )
        notifications.notify(
            kind="campaign_auto_paused",
            title=f"Campaign “{campaign.name[:120]}” paused itself: {reason}"[:300],
            link=reverse("campaigns:detail", args=[campaign.pk]),
        )
        marketing_id = campaign.marketing_id or None
        transaction.on_commit(
            lambda: hooks.feedback_campaign_auto_paused(
                campaign_id=campaign_id, marketing_id=marketing_id, at=now
            )
        )
    return True


# --- sender health (reads) -------------------------------------------------------------


@dataclass(kw_only=True)
class Health(Rates):
    label: str  # identity name or domain
    kind: str  # "identity" or "domain"
    key: str  # identity pk or domain, for links
    auth_reports: int = 0
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)
    badge: str = "good"
    badge_why: str = ""


def _badge(item: Health, row: FeedbackPolicy) -> None:
    recent_blocks = sum(n for _, n in item.blocks_by_provider)
    if (
        item.hard_percent > row.autopause_hard_bounce_percent
        or item.complaint_percent > row.autopause_complaint_percent
        or any(n >= row.autopause_provider_blocks for _, n in item.blocks_by_provider)
    ):
        item.badge, item.badge_why = "critical", "rates above the auto-pause thresholds"
    elif (
        item.hard_percent > row.autopause_hard_bounce_percent / 2
        or item.complaint_percent > row.autopause_complaint_percent / 2
        or recent_blocks
        or item.auth_reports
    ):
        reasons = []
        if recent_blocks:
            reasons.append(f"{recent_blocks} sender-side refusals")
        if item.auth_reports:
            reasons.append(f"{item.auth_reports} authentication-failure reports")
        item.badge = "warning"
        item.badge_why = ", ".join(reasons) or "rates approaching the thresholds"
    else:
        item.badge, item.badge_why = "good", "rates well below the thresholds"


def _fill(
    item: Health,
    messages: QuerySet[Message],
    events: QuerySet[BounceEvent],
    sender_events: QuerySet[SenderEvent],
    since: dt.datetime,
    days: int,
) -> None:
    item.attempted = messages.count()
    counts = events.aggregate(
        hard=Count("id", filter=Q(kind=BounceKind.HARD)),
        soft=Count("id", filter=Q(kind=BounceKind.SOFT)),
        complaints=Count("id", filter=Q(kind=BounceKind.COMPLAINT)),
    )
    item.hard, item.soft, item.complaints = counts["hard"], counts["soft"], counts["complaints"]
    item.top_reasons = Counter(
        dict(
            events.exclude(reason="")
            .values_list("reason")
            .annotate(n=Count("id"))
            .order_by("-n")[:5]
        )
    ).most_common(5)
    week = timezone.now() - dt.timedelta(days=7)
    item.blocks_by_provider = [
        (p or "unknown", n)
        for p, n in sender_events.filter(kind=SenderEventKind.BLOCK, received_at__gte=week)
        .values_list("provider")
        .annotate(n=Count("id"))
        .order_by("-n")[:5]
    ]
    item.auth_reports = sender_events.filter(kind=SenderEventKind.AUTH_FAILURE_REPORT).count()
    per_day: dict[dt.date, dict[str, int]] = {}
    for day, kind, n in (
        events.values_list("received_at__date", "kind").annotate(n=Count("id")).order_by()
    ):
        per_day.setdefault(day, Counter())[kind] += n
    for day, n in (
        messages.filter(finished_at__isnull=False)
        .values_list("finished_at__date")
        .annotate(n=Count("id"))
        .order_by()
    ):
        per_day.setdefault(day, Counter())["sent"] += n
    item.daily = [
        {"day": day, **{k: per_day[day].get(k, 0) for k in ("sent", "hard", "soft", "complaint")}}
        for day in sorted(per_day, reverse=True)[:days]
    ]


def sender_health(*, days: int = 30) -> list[Health]:
    """Health per sender identity and per sending domain over the last ``days`` days."""
    row = policy.current()
    since = timezone.now() - dt.timedelta(days=days)
    messages = Message.objects.filter(state__in=ATTEMPTED, queued_at__gte=since)
    events = BounceEvent.objects.filter(received_at__gte=since)
    sender_events = SenderEvent.objects.filter(received_at__gte=since)
    found: list[Health] = []
    domains: dict[str, list[int]] = {}
    for identity in SenderIdentity.objects.order_by("name"):
        item = Health(label=identity.name, kind="identity", key=str(identity.pk))
        _fill(
            item,
            messages.filter(campaign__sender=identity),
            events.filter(sender=identity),
            sender_events.filter(sender=identity),
            since,
            14,
        )
        _badge(item, row)
        found.append(item)
        domain = identity.from_email.rsplit("@", 1)[-1].lower()
        domains.setdefault(domain, []).append(identity.pk)
    for domain, ids in sorted(domains.items()):
        item = Health(label=domain, kind="domain", key=domain)
        _fill(
            item,
            messages.filter(campaign__sender__in=ids),
            events.filter(sending_domain=domain),
            sender_events.filter(sending_domain=domain),
            since,
            14,
        )
        _badge(item, row)
        found.append(item)
    return found


def worst_badge(items: list[Health]) -> str:
    order = {"good": 0, "warning": 1, "critical": 2}
    return max((i.badge for i in items), key=order.__getitem__, default="good")


# --- lists (UI and API) ----------------------------------------------------------------


def bounce_events(
    *,
    kind: str = "",
    reason: str = "",
    provider: str = "",
    campaign_id: int | None = None,
    sender_id: int | None = None,
    contact_id: int | None = None,
) -> QuerySet[BounceEvent]:
    """Bounce and complaint events, newest first, filtered (empty filters are ignored)."""
    events = BounceEvent.objects.select_related("campaign", "sender")
    if kind:
        events = events.filter(kind=kind)
    if reason:
        events = events.filter(reason=reason)
    if provider:
        events = events.filter(provider=provider.lower())
    if campaign_id:
        events = events.filter(campaign_id=campaign_id)
    if sender_id:
        events = events.filter(sender_id=sender_id)
    if contact_id:
        events = events.filter(contact_id=contact_id)
    return events


def sender_events(
    *, kind: str = "", provider: str = "", sender_id: int | None = None
) -> QuerySet[SenderEvent]:
    events = SenderEvent.objects.select_related("campaign", "sender")
    if kind:
        events = events.filter(kind=kind)
    if provider:
        events = events.filter(provider=provider.lower())
    if sender_id:
        events = events.filter(sender_id=sender_id)
    return events


def providers() -> list[str]:
    """Receiving providers seen in the last 90 days (filter choices)."""
    since = timezone.now() - dt.timedelta(days=90)
    return list(
        BounceEvent.objects.filter(received_at__gte=since)
        .exclude(provider="")
        .values_list("provider", flat=True)
        .distinct()
        .order_by("provider")[:200]
    )
