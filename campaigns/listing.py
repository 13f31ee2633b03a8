"""Reads for the campaign list (filters and search) and the campaign calendar."""

from __future__ import annotations

import calendar as calendar_lib
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, Message, MessageState
from campaigns.selectors import _summary

MAX_QUERY = 200


@dataclass(frozen=True)
class CampaignFilter:
    status: str = ""
    sender_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    query: str = ""


def _marketing() -> QuerySet[Campaign]:
    return Campaign.objects.filter(transactional=False, journey_step__isnull=True)


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def campaigns_filtered(
    *, filters: CampaignFilter, limit: int = 100
) -> list[tuple[Campaign, dict[str, Any]]]:
    """Marketing campaigns matching ``filters``, newest first, with their message counts.

    The date range matches a campaign's send time (started, else scheduled, else
    created); the search matches the name or the template's subject (no PHI lives in
    either). Counts come from one grouped query for the page.
    """
    campaigns = _marketing().select_related("template", "sender")
    if filters.status:
        campaigns = campaigns.filter(status=filters.status)
    if filters.sender_id:
        campaigns = campaigns.filter(sender_id=filters.sender_id)
    when = Q()
    if filters.date_from:
        start = _day_start(filters.date_from)
        when &= (
            Q(started_at__gte=start)
            | Q(started_at__isnull=True, scheduled_at__gte=start)
            | Q(started_at__isnull=True, scheduled_at__isnull=True, created_at__gte=start)
        )
    if filters.date_to:
        end = _day_start(filters.date_to + dt.timedelta(days=1))
        when &= (
            Q(started_at__lt=end)
            | Q(started_at__isnull=True, scheduled_at__lt=end)
            | Q(started_at__isnull=True, scheduled_at__isnull=True, created_at__lt=end)
        )
    campaigns = campaigns.filter(when)
    text = " ".join(filters.query.split())[:MAX_QUERY]
    if text:
        campaigns = campaigns.filter(Q(name__icontains=text) | Q(template__subject__icontains=text))
    page = list(campaigns.order_by("-created_at", "-id")[:limit])
    counts: dict[int, dict[str, int]] = {
        c.pk: {state: 0 for state in MessageState.values} for c in page
    }
    rows = (
        Message.objects.filter(campaign__in=page)
        .values_list("campaign_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for campaign_id, state, n in rows:
        counts[campaign_id][state] = n
    return [(c, _summary(counts[c.pk])) for c in page]


@dataclass
class CalendarDay:
    day: dt.date
    in_month: bool
    today: bool
    campaigns: list[Campaign] = field(default_factory=list)


@dataclass
class CalendarMonth:
    year: int
    month: int
    weeks: list[list[CalendarDay]]

    @property
    def title(self) -> str:
        return dt.date(self.year, self.month, 1).strftime("%B %Y")

    @property
    def previous(self) -> tuple[int, int]:
        return (self.year - 1, 12) if self.month == 1 else (self.year, self.month - 1)

    @property
    def next(self) -> tuple[int, int]:
        return (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)


_CALENDAR_STATUSES = (
    CampaignStatus.SCHEDULED,
    CampaignStatus.SENDING,
    CampaignStatus.PAUSED,
    CampaignStatus.SENT,
)


def calendar_month(*, year: int, month: int) -> CalendarMonth:
    """The month's weeks (Monday first), each day with the campaigns scheduled or sent on
    it in the organization's time zone (sent: its start; scheduled: its send time)."""
    weeks_dates = calendar_lib.Calendar(firstweekday=0).monthdatescalendar(year, month)
    first, last = weeks_dates[0][0], weeks_dates[-1][-1]
    start, end = _day_start(first), _day_start(last + dt.timedelta(days=1))
    found = (
        _marketing()
        .filter(status__in=_CALENDAR_STATUSES)
        .filter(
            Q(started_at__gte=start, started_at__lt=end)
            | Q(started_at__isnull=True, scheduled_at__gte=start, scheduled_at__lt=end)
        )
    )
    by_day: dict[dt.date, list[Campaign]] = {}
    for campaign in found.order_by("scheduled_at", "started_at", "id")[:1000]:
        moment = campaign.started_at or campaign.scheduled_at
        assert moment is not None
        by_day.setdefault(timezone.localtime(moment).date(), []).append(campaign)
    today = timezone.localdate()
    weeks = [
        [CalendarDay(d, d.month == month, d == today, by_day.get(d, [])) for d in week]
        for week in weeks_dates
    ]
    return CalendarMonth(year, month, weeks)
