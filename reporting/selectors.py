"""Reporting reads: proxy-range lookups, the webhook lists and a contact's history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When

from campaigns.models import Message
from reporting.classification import NetworkMatch
from reporting.models import (
    Event,
    ProxyRange,
    ProxyRangeList,
    ReportSchedule,
    TrackedLink,
    TrackingOptions,
    WebhookDelivery,
    WebhookEndpoint,
)
from reporting.proxy_ranges import RangeCache


def active_range_rows() -> Iterator[tuple[str, str, str, str, str]]:
    """Active ranges in priority order: ranges an Admin added by hand win over lists."""
    priority = Case(
        When(source=ProxyRange.SOURCE_ADMIN, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    rows = (
        ProxyRange.objects.filter(active=True)
        .annotate(priority=priority)
        .order_by("priority", "id")
        .values_list("cidr", "scope", "kind", "provider", "label")
    )
    return rows.iterator(chunk_size=10_000)


# One index per process, rebuilt when any process changes the ranges.
RANGE_CACHE = RangeCache(active_range_rows, cache)


def proxy_ranges_with_list_date(ranges: QuerySet[ProxyRange]) -> QuerySet[ProxyRange]:
    """``ranges`` annotated with ``list_refreshed``: when their source's list was loaded."""
    refreshed = ProxyRangeList.objects.filter(source=OuterRef("source")).values("refreshed_at")
    return ranges.annotate(list_refreshed=Subquery(refreshed[:1]))


def proxy_range_match(*, ip: str) -> NetworkMatch | None:
    """The most specific active range containing ``ip`` (no database query when warm)."""
    return RANGE_CACHE.index().lookup(ip)


def proxy_ranges(*, source: str = "") -> QuerySet[ProxyRange]:
    qs = ProxyRange.objects.order_by("source", "cidr")
    return qs.filter(source=source) if source else qs


def webhook_endpoints() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.select_related("created_by").order_by("name", "id")


def webhook_endpoints_disabled_by_failures() -> QuerySet[WebhookEndpoint]:
    """Endpoints switched off automatically: an Admin should look at them."""
    return WebhookEndpoint.objects.filter(
        active=False, disabled_reason=WebhookEndpoint.DisabledReason.FAILURES
    ).order_by("-disabled_at")


def webhook_deliveries(
    *, endpoint: WebhookEndpoint | None = None, status: str = ""
) -> QuerySet[WebhookDelivery]:
    qs = WebhookDelivery.objects.select_related("endpoint").order_by("-id")
    if endpoint is not None:
        qs = qs.filter(endpoint=endpoint)
    if status:
        qs = qs.filter(status=status)
    return qs


def settings_admin_emails() -> list[str]:
    """E-mail addresses of active users who may manage settings (Admins, superusers)."""
    permission = Permission.objects.filter(
        content_type__app_label="luxmail", codename="manage_settings"
    ).first()
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    holders = Q(is_superuser=True)
    if permission is not None:
        holders |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    return sorted(set(users.filter(holders).values_list("email", flat=True)))


# --- engagement events ------------------------------------------------------------------


def message_events(*, message_id: int) -> QuerySet[Any]:
    """Every open and click of a message, whatever its label, oldest first."""

    return Event.objects.filter(message_id=message_id).order_by("occurred_at", "id")


def contact_history(*, contact_id: int, limit: int = 500) -> list[dict[str, Any]]:
    """The ``limit`` most recent messages sent to a contact (ids, campaign, state,
    channel, times; no content, no address), newest first, each with its opens and
    clicks (kind, label, time) oldest first. Two queries whatever the history's length;
    on PostgreSQL each reads one index per monthly partition (docs/performance.md)."""
    messages = list(
        Message.objects.filter(contact_id=contact_id)
        .order_by("-queued_at", "-id")
        .values(
            "id",
            "campaign_id",
            "campaign__name",
            "state",
            "channel",
            "queued_at",
            "finished_at",
        )[:limit]
    )
    events: dict[int, list[dict[str, Any]]] = {row["id"]: [] for row in messages}
    rows = (
        Event.objects.filter(message_id__in=list(events))
        .order_by("occurred_at", "id")
        .values_list("message_id", "kind", "label", "occurred_at")
    )
    for message_id, kind, label, occurred_at in rows:
        events[message_id].append({"kind": kind, "label": label, "at": occurred_at})
    return [{**row, "events": events[row["id"]]} for row in messages]


def message_summary(*, message_id: int) -> dict[str, Any] | None:
    """Ids, state and channel of a message (no address, no content), or None."""

    found = (
        Message.objects.filter(pk=message_id)
        .values(
            "id",
            "campaign_id",
            "campaign__name",
            "state",
            "channel",
            "queued_at",
            "finished_at",
        )
        .first()
    )
    return dict(found) if found is not None else None


def campaign_links(*, campaign_id: int) -> list[dict[str, Any]]:
    """The campaign's tracked links with their clicks per label."""

    counts: dict[tuple[int, str], int] = {
        (row["link_index"], row["label"]): row["n"]
        for row in Event.objects.filter(campaign_id=campaign_id, kind="click")
        .values("link_index", "label")
        .annotate(n=Count("id"))
    }
    links = []
    for link in TrackedLink.objects.filter(campaign_id=campaign_id).order_by("index"):
        links.append(
            {
                "index": link.index,
                "url": link.url,
                "honeypot": link.index == TrackedLink.HONEYPOT,
                "human": counts.get((link.index, "human"), 0),
                "unknown": counts.get((link.index, "unknown"), 0),
                "automated": counts.get((link.index, "automated"), 0),
            }
        )
    return links


def tracking_options(*, campaign_id: int) -> Any:

    return TrackingOptions.objects.filter(campaign_id=campaign_id).first()


def message_engaged(
    *,
    message_id: int,
    kinds: tuple[str, ...] = ("open", "click"),
    labels: tuple[str, ...] = ("human",),
    before: Any = None,
) -> bool:
    """Whether the message has an event of ``kinds`` classified as one of ``labels``
    (by default: a human open or click — a click implies the message was opened),
    optionally only events that happened before ``before``. Journey branches use it
    ("opened within N days"), so automated opens never count there."""

    events = Event.objects.filter(message_id=message_id, kind__in=kinds, label__in=labels)
    if before is not None:
        events = events.filter(occurred_at__lt=before)
    return events.exists()


def report_staff() -> QuerySet[Any]:
    """Active staff with an e-mail address who may view reports: who a scheduled report
    can go to (reports hold no PHI, but only people allowed to see them get them)."""
    permission = Permission.objects.filter(
        content_type__app_label="reporting", codename="view_report"
    ).first()
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    holders = Q(is_superuser=True)
    if permission is not None:
        holders |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    return users.filter(holders).distinct().order_by("username")


def report_schedules_with_recipient_count(
    schedules: QuerySet[ReportSchedule],
) -> QuerySet[ReportSchedule]:
    """``schedules`` annotated with ``recipient_count`` (the admin list, one query)."""
    return schedules.annotate(recipient_count=Count("recipients", distinct=True))
