"""Read-side queries for the core app (audit log listing, API keys)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from luxmail import audit_checkpoints, org
from luxmail.models import ApiKey, AuditEvent

AUDIT_PAGE_SIZE = 50


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight of ``day`` in the organization's zone (dates are entered in it)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(org.time_zone()))


def audit_events(
    *,
    action: str = "",
    actor: str = "",
    target: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    phi_only: bool = False,
) -> QuerySet[AuditEvent]:
    """Events matching every given filter, newest first.

    ``action`` is a prefix (``campaign.`` finds every campaign action); ``actor`` a
    part of the actor's label; ``target`` an object's type (``campaigns.campaign``), its
    id or UUID, or ``type:id``; ``date_from``/``date_to`` whole days in the
    organization's zone, both included.
    """
    qs = AuditEvent.objects.order_by("-id")
    if action:
        qs = qs.filter(action__startswith=action.strip())
    if actor:
        qs = qs.filter(actor_label__icontains=actor.strip())
    if target:
        qs = qs.filter(_target_q(target.strip()))
    if date_from:
        qs = qs.filter(created_at__gte=_day_start(date_from))
    if date_to:
        qs = qs.filter(created_at__lt=_day_start(date_to + dt.timedelta(days=1)))
    if phi_only:
        qs = qs.filter(phi=True)
    return qs


def _target_q(target: str) -> Q:
    if ":" in target:
        kind, _, ident = target.partition(":")
        return Q(target_type=kind.strip().lower(), target_id=ident.strip())
    if "." in target:
        return Q(target_type__startswith=target.lower())
    return Q(target_id=target)


@dataclass(frozen=True)
class AuditPage:
    """One keyset page of events, newest first. ``older``/``newer`` are the cursors of
    the neighbouring pages (an event id), None at either end."""

    events: list[AuditEvent]
    older: int | None
    newer: int | None


def audit_page(
    events: QuerySet[AuditEvent],
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """Keyset pagination over ``events`` (ordered by id, newest first): the page of
    events older than ``before``, or newer than ``after``, or the newest. Constant cost
    however deep the page, unlike OFFSET."""
    if after is not None:
        rows = list(events.filter(id__gt=after).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        newer = rows[0].pk if rows and more_newer else None
        older = rows[-1].pk if rows and events.filter(id__lt=rows[-1].pk).exists() else None
        return AuditPage(rows, older, newer)
    if before is not None:
        events = events.filter(id__lt=before)
    rows = list(events[: size + 1])
    older = rows[size - 1].pk if len(rows) > size else None
    rows = rows[:size]
    newer = rows[0].pk if rows and before is not None else None
    return AuditPage(rows, older, newer)


def audit_status() -> dict[str, Any]:
    """The last verification (newest ``audit.verify`` event) and the last checkpoint.

    ``checkpoint_problem`` says why the checkpoint file's last line cannot be shown.
    """

    last_verification = AuditEvent.objects.filter(action="audit.verify").order_by("-id").first()
    checkpoint, problem = None, ""
    try:
        checkpoint = audit_checkpoints.latest_quick()
    except audit_checkpoints.CheckpointError as error:
        problem = str(error)
    except OSError as error:
        problem = f"the checkpoint file cannot be read ({error.strerror})"
    return {
        "last_verification": last_verification,
        "last_checkpoint": checkpoint,
        "checkpoint_problem": problem,
    }


def api_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("created_by").order_by("-created_at")
