"""Automatic enrollment: segment/list entry and date offsets, in bounded batches.

Both are set-based SQL through the segment engine — never a Python loop over contacts:

* **Segment or list entry.** Entering means "in the audience and not yet seen". One
  batch inserts up to N unseen members into ``JourneySeen`` and enrolls those the
  re-entry rule allows; members who left are forgotten (so coming back is entering
  again). Right after the trigger is published the audience's current members are
  only *seen* (priming) unless the trigger includes existing members.
* **Date offset.** "7 days before ``next_appointment``" enrolls, on the contact's local
  day D, the contacts whose date equals D + 7 — a blind-index token condition
  (``tokens && ARRAY[…]``) per group of time zones sharing the same local date; a
  yearly trigger matches the month and day of every year. Each occurrence enrolls a
  contact at most once (``trigger_key`` = the occurrence's date).

A journey is evaluated under its row lock (``SKIP LOCKED``: concurrent evaluations of
the same journey skip it), one bounded batch per call; the Celery task re-queues
itself while batches come back full.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.journeys import definition as d
from campaigns.journeys import timing
from campaigns.models import (
    EnrollmentState,
    Journey,
    JourneyEnrollment,
    JourneySeen,
    JourneyStatus,
    JourneyStep,
    JourneyVersion,
)
from contacts import segments, tokens
from contacts.models import Contact, ListMembership, Segment
from contacts.tokens import DATE_MAX, DATE_MIN
from luxmail import audit, conf

AUTOMATIC = ("segment", "list", "date")


def batch_size() -> int:
    return conf.journey_trigger_batch()


@dataclass
class TriggerReport:
    enrolled: int = 0
    seen: int = 0
    forgotten: int = 0
    more: bool = False
    busy: bool = False


def journeys_to_evaluate() -> list[int]:
    """Active and paused journeys with an automatic trigger (paused ones still enroll;
    their enrollments wait for the resume)."""
    ids = []
    for pk, trigger in Journey.objects.filter(
        status__in=(JourneyStatus.ACTIVE, JourneyStatus.PAUSED), current_version__isnull=False
    ).values_list("pk", "current_version__trigger"):
        if (trigger or {}).get("kind") in AUTOMATIC:
            ids.append(pk)
    return ids


def blocked_q(
    *, journey: Journey, version: JourneyVersion, now: dt.datetime, trigger_key: str = ""
) -> Q:
    """Contacts the re-entry rule keeps out now (and those this occurrence enrolled)."""
    enrollments = JourneyEnrollment.objects.filter(journey=journey, contact_id=OuterRef("pk"))
    rule = version.reentry or {"mode": "once"}
    if rule.get("mode") == "after_days":
        blocking = Q(state=EnrollmentState.ACTIVE) | Q(
            entered_at__gt=now - dt.timedelta(days=int(rule["days"]))
        )
        if trigger_key:
            blocking |= Q(trigger_key=trigger_key)
        enrollments = enrollments.filter(blocking)
    return Q(Exists(enrollments))


def enroll_ids(
    *,
    journey: Journey,
    version: JourneyVersion,
    contact_ids: list[int],
    source: str,
    now: dt.datetime,
    trigger_key: str = "",
) -> int:
    """Insert enrollments (entry step, due now); the unique constraints drop any a
    concurrent path created first. Returns how many were inserted."""
    if not contact_ids:
        return 0
    entry = JourneyStep.objects.get(version=version, key=version.entry_key)
    before = JourneyEnrollment.objects.filter(journey=journey).count()
    JourneyEnrollment.objects.bulk_create(
        [
            JourneyEnrollment(
                journey=journey,
                version=version,
                contact_id=contact_id,
                current_step=entry,
                next_run_at=now,
                source=source,
                trigger_key=trigger_key,
                entered_at=now,
            )
            for contact_id in contact_ids
        ],
        ignore_conflicts=True,
    )
    return JourneyEnrollment.objects.filter(journey=journey).count() - before


def evaluate_journey(*, journey_id: int, limit: int | None = None) -> TriggerReport:
    """One bounded batch of a journey's automatic trigger. Audits ``journey.enroll``
    (source, count) when it enrolled anyone."""

    report = TriggerReport()
    limit = limit or batch_size()
    with transaction.atomic():
        journey = (
            Journey.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("current_version")
            .filter(pk=journey_id, status__in=(JourneyStatus.ACTIVE, JourneyStatus.PAUSED))
            .first()
        )
        if journey is None or journey.current_version is None:
            report.busy = journey is None
            return report
        version = journey.current_version
        trigger = version.trigger or {}
        kind = trigger.get("kind")
        now = timezone.now()
        if kind in ("segment", "list"):
            members = _audience(trigger)
            if members is not None:
                _audience_batch(
                    journey, version, Contact.objects.filter(members), kind, now, limit, report
                )
        elif kind == "date" and trigger.get("field") in d.date_fields():
            _date_batch(journey, version, trigger, now, limit, report)
        if report.enrolled:
            audit.record(
                "journey.enroll",
                actor=None,
                target=journey,
                details={"source": kind, "enrolled": report.enrolled, "version": version.number},
            )
    return report


def _audience(trigger: dict[str, Any]) -> Q | None:

    if trigger["kind"] == "segment":
        segment = Segment.objects.filter(pk=trigger.get("segment") or 0).first()
        if segment is None:
            return None
        return segments.compile_rules(segment.rules, segments.context())
    return Q(
        Exists(
            ListMembership.objects.filter(
                contact_id=OuterRef("pk"), contact_list_id=trigger.get("list") or 0
            )
        )
    )


def _audience_batch(
    journey: Journey,
    version: JourneyVersion,
    members: Any,
    kind: str,
    now: dt.datetime,
    limit: int,
    report: TriggerReport,
) -> None:
    seen = JourneySeen.objects.filter(journey=journey, contact_id=OuterRef("pk"))
    new = list(members.exclude(Exists(seen)).order_by("pk").values_list("pk", flat=True)[:limit])
    JourneySeen.objects.bulk_create(
        [JourneySeen(journey=journey, contact_id=pk) for pk in new], ignore_conflicts=True
    )
    report.seen = len(new)
    if journey.seen_primed_at is None:
        # Priming: today's members are the starting point, not entrants.
        if len(new) < limit:
            journey.seen_primed_at = now
            journey.save(update_fields=["seen_primed_at"])
    else:
        eligible = list(
            Contact.objects.filter(pk__in=new)
            .exclude(blocked_q(journey=journey, version=version, now=now))
            .values_list("pk", flat=True)
        )
        report.enrolled = enroll_ids(
            journey=journey, version=version, contact_ids=eligible, source=kind, now=now
        )
    left = list(
        JourneySeen.objects.filter(journey=journey)
        .exclude(contact_id__in=members.values("pk"))
        .values_list("pk", flat=True)[:limit]
    )
    if left:
        JourneySeen.objects.filter(pk__in=left).delete()
    report.forgotten = len(left)
    report.more = len(new) == limit or len(left) == limit


def date_match_q(field: str, day: dt.date, *, yearly: bool) -> Q:
    """Contacts whose date ``field`` is ``day`` (or, yearly, whose anniversary is),
    through the segment engine's date tokens."""

    if not yearly:
        return segments.compile_rules(
            {"field": field, "op": "eq", "value": day.isoformat()}, segments.context()
        )
    token_field = d.date_token_field(field)
    return segments.token_q(
        [tokens.token(token_field, f"D{when.isoformat()}") for when in timing.anniversaries(day)]
    )


def zone_q(zones: list[str]) -> Q:
    """Contacts living in one of ``zones`` (no or an unknown zone: the organization's)."""
    q = Q(time_zone__in=zones)
    if timing.org_zone_name() in zones:
        q |= Q(time_zone="") | ~Q(time_zone__in=sorted(timing.all_zones()))
    return q


def _date_batch(
    journey: Journey,
    version: JourneyVersion,
    trigger: dict[str, Any],
    now: dt.datetime,
    limit: int,
    report: TriggerReport,
) -> None:

    offset = dt.timedelta(days=int(trigger.get("offset_days") or 0))
    remaining = limit
    for local_day, zones in sorted(timing.zones_by_local_date(now).items()):
        # The trigger fires on the local day D when date + offset = D.
        target = local_day - offset
        if not DATE_MIN <= target <= DATE_MAX:
            continue
        key = target.isoformat()
        candidates = list(
            Contact.objects.filter(
                date_match_q(trigger["field"], target, yearly=bool(trigger.get("yearly")))
            )
            .filter(zone_q(zones))
            .exclude(blocked_q(journey=journey, version=version, now=now, trigger_key=key))
            .order_by("pk")
            .values_list("pk", flat=True)[:remaining]
        )
        report.enrolled += enroll_ids(
            journey=journey,
            version=version,
            contact_ids=candidates,
            source="date",
            now=now,
            trigger_key=key,
        )
        remaining -= len(candidates)
        if remaining <= 0:
            report.more = True
            return
