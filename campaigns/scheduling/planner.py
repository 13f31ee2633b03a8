"""Per-message not-before times and the planned delivery curve of a campaign.

A message whose recipient must wait (their local send time, the organization's quiet
hours in their zone, an A/B variant's send time) is inserted ``queued`` with
``next_attempt_at`` set: the queue claims it only once that moment has passed
(``campaigns/sending/queue.py``), and the recovery sweep restarts the send chains
then. The throttle is applied by the send chains as for any campaign.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, Value
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from campaigns.models import (
    ABVariant,
    Campaign,
    CampaignStatus,
    DeliveryPlan,
    Message,
    MessageState,
)
from campaigns.scheduling.local_time import QuietHours, curve, not_before, releases, zone_of
from campaigns.selectors import audience_queryset
from luxmail import org


def quiet_hours() -> QuietHours:
    row = org.get_settings()
    return QuietHours(start=row.quiet_hours_start, end=row.quiet_hours_end)


def default_zone() -> ZoneInfo:
    """The zone of contacts without one: the organization setting, else its own zone."""
    fallback = ZoneInfo(org.time_zone())
    return zone_of(org.get_settings().contact_default_time_zone, default=fallback)


@dataclass(frozen=True)
class Timing:
    """What decides a campaign's per-recipient times (all optional)."""

    local_date: dt.date | None = None
    local_time: dt.time | None = None
    quiet: QuietHours | None = None
    send_at: dt.datetime | None = None

    @property
    def any(self) -> bool:
        return (
            (self.local_date is not None and self.local_time is not None)
            or (self.quiet is not None and not self.quiet.empty)
            or self.send_at is not None
        )

    def at(self, *, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
        return not_before(
            now=now,
            zone=zone,
            local_date=self.local_date,
            local_time=self.local_time,
            quiet=self.quiet,
            send_at=self.send_at,
        )


def _plan_of(campaign: Campaign) -> tuple[DeliveryPlan | None, ABVariant | None]:
    """The campaign's delivery plan (an A/B variant follows its parent's) and variant."""
    variant = ABVariant.objects.filter(campaign=campaign).select_related("test").first()
    plan_owner_id = variant.test.campaign_id if variant is not None else campaign.pk
    return DeliveryPlan.objects.filter(campaign_id=plan_owner_id).first(), variant


def respects_quiet_hours(campaign: Campaign) -> bool:
    """Quiet hours hold every marketing message (campaigns started from the UI, the
    API, the scheduler, A/B variants, journey steps without transactional consent);
    never transactional mail (secure-message notices, confirmations), nor a campaign
    whose delivery plan an Admin set not to respect them."""
    if campaign.transactional:
        return False
    plan, _ = _plan_of(campaign)
    return plan is None or plan.respect_quiet_hours


def timing_of(campaign: Campaign) -> Timing:
    """The campaign's delivery plan and quiet hours; an A/B variant follows its
    parent's plan and adds its own send time."""
    plan, variant = _plan_of(campaign)
    send_at = variant.send_at if variant is not None else None
    respect = not campaign.transactional and (plan is None or plan.respect_quiet_hours)
    quiet = quiet_hours() if respect else None
    if quiet is not None and quiet.empty:
        quiet = None
    if plan is None:
        return Timing(quiet=quiet, send_at=send_at)
    return Timing(
        local_date=plan.local_date if plan.by_local_time else None,
        local_time=plan.local_time if plan.by_local_time else None,
        quiet=quiet,
        send_at=send_at,
    )


class _QuietGate:
    """Quiet hours at claim time (``campaigns/sending/hooks.py``): a message claimed
    while its recipient's zone is quiet is held until the end of quiet hours there,
    whenever and however the campaign started (and a throttled send that runs into the
    evening stops there, per zone)."""

    def applies(self, campaign: Campaign) -> bool:
        return respects_quiet_hours(campaign)

    def releases(
        self, names: Iterable[str | None], *, now: dt.datetime
    ) -> dict[str | None, dt.datetime]:
        # One read of the settings per batch: an Admin's change applies to the next one.
        row = org.get_settings()
        quiet = QuietHours(start=row.quiet_hours_start, end=row.quiet_hours_end)
        if quiet.empty:
            return {}
        default = zone_of(row.contact_default_time_zone, default=ZoneInfo(org.time_zone()))
        return releases(names, quiet=quiet, now=now, default=default)


QUIET_GATE = _QuietGate()


def messages_schedule(*, campaign: Campaign, now: dt.datetime) -> int:
    """Give the campaign's queued messages their not-before times (at start, inside the
    start's transaction). One UPDATE per distinct contact time zone (bounded by the IANA
    list). Returns how many messages must wait."""
    timing = timing_of(campaign)
    if not timing.any:
        return 0
    default = default_zone()
    names = (
        Message.objects.filter(campaign=campaign, state=MessageState.QUEUED)
        .values_list("contact__time_zone", flat=True)
        .distinct()
    )
    waiting = 0
    for name in list(names):
        moment = timing.at(now=now, zone=zone_of(name, default=default))
        if moment <= now:
            continue
        rows = Message.objects.filter(campaign=campaign, state=MessageState.QUEUED)
        if name is None:  # the contact was erased since: nothing to time
            continue
        rows = rows.filter(contact__time_zone=name)
        waiting += rows.update(next_attempt_at=moment)
    return waiting


def planned_curve(
    campaign: Campaign, *, now: dt.datetime | None = None
) -> list[tuple[dt.datetime, int]]:
    """Messages per hour still to be sent (UTC hours), computed on the server.

    A started campaign: its open messages by not-before time. A draft or scheduled one:
    its eligible audience by time zone, from the scheduled time (or now). Both spread by
    the throttle; a marketing campaign's messages (and throttled backlog) in a zone
    wait while quiet hours last there, as the send path holds them.
    """
    now = now or timezone.now()
    timing = timing_of(campaign)
    per_minute = campaign.throttle_per_minute
    # With quiet hours the curve is kept per zone: a message due in a quiet zone (and,
    # throttled, the backlog of one) waits for the end of quiet hours there.
    quiet = timing.quiet
    default = default_zone()
    if campaign.status in (CampaignStatus.SENDING, CampaignStatus.PAUSED):
        open_rows = Message.objects.filter(
            campaign=campaign, state__in=(MessageState.QUEUED, MessageState.DEFERRED)
        ).annotate(hour=TruncHour(Coalesce("next_attempt_at", Value(now)), tzinfo=dt.UTC))
        if quiet is None:
            rows = open_rows.values("hour").annotate(n=Count("id")).values_list("hour", "n")
            due = [(max(hour, now), n) for hour, n in rows]
            return curve(due, per_minute=per_minute)
        zone_rows = (
            open_rows.values("hour", "contact__time_zone")
            .annotate(n=Count("id"))
            .values_list("hour", "contact__time_zone", "n")
        )
        zones = []
        for hour, name, n in zone_rows:
            zone = zone_of(name, default=default)
            zones.append((quiet.release(max(hour, now), zone), n, zone))
        return curve([], per_minute=per_minute, quiet=quiet, zones=zones)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        return []
    start = max(now, campaign.scheduled_at) if campaign.scheduled_at else now
    phi = bool(campaign.template and campaign.template.phi_bearing)
    by_zone = (
        audience_queryset(campaign=campaign, phi=phi)
        .order_by()
        .values("time_zone")
        .annotate(n=Count("id"))
        .values_list("time_zone", "n")
    )
    zones = []
    for name, n in by_zone:
        zone = zone_of(name, default=default)
        zones.append((timing.at(now=start, zone=zone), n, zone))
    return curve([], per_minute=per_minute, quiet=quiet, zones=zones)
