"""Enrollment: re-entry rules, enrolling and removing contacts, receiving journey events."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.journeys import definition as d
from campaigns.journeys.definition import JourneyError
from campaigns.journeys.services.errors import (
    EnrollmentRefused,
    IdempotencyConflict,
    TransitionError,
    _lock,
)
from campaigns.journeys.services.publishing import _enqueue_advance
from campaigns.models import (
    EnrollmentState,
    Journey,
    JourneyEnrollment,
    JourneyEvent,
    JourneyStatus,
    JourneyStep,
    JourneyVersion,
)
from luxmail import audit
from luxmail.actors import Actor

# --- enrollment -------------------------------------------------------------------------------


def reentry_block(
    *, journey: Journey, version: JourneyVersion, contact_id: int, now: dt.datetime
) -> EnrollmentRefused | None:
    """Why the contact may not enter now (already in it, re-entry rule), or None."""
    enrollments = JourneyEnrollment.objects.filter(journey=journey, contact_id=contact_id)
    if enrollments.filter(state=EnrollmentState.ACTIVE).exists():
        return EnrollmentRefused("already_active", "The contact is already in this journey.")
    last = enrollments.order_by("-entered_at").values_list("entered_at", flat=True).first()
    if last is None:
        return None
    rule = version.reentry or {"mode": "once"}
    if rule.get("mode") != "after_days":
        return EnrollmentRefused(
            "reentry_once", "The contact already went through this journey (re-entry: once)."
        )
    allowed_from = last + dt.timedelta(days=int(rule["days"]))
    if now < allowed_from:
        return EnrollmentRefused(
            "reentry_wait",
            f"The contact may enter this journey again from {allowed_from:%Y-%m-%d %H:%M} UTC "
            f"(re-entry after {rule['days']} days).",
        )
    return None


def _enrollable(journey: Journey) -> JourneyVersion:
    if journey.status not in (JourneyStatus.ACTIVE, JourneyStatus.PAUSED):
        raise EnrollmentRefused(
            "journey_inactive",
            "Contacts can enter only an active (or paused) journey; activate it first.",
        )
    version = journey.current_version
    assert version is not None
    return version


def _new_enrollment(
    *,
    journey: Journey,
    version: JourneyVersion,
    contact_id: int,
    source: str,
    now: dt.datetime,
    trigger_key: str = "",
) -> JourneyEnrollment:
    entry = JourneyStep.objects.get(version=version, key=version.entry_key)
    return JourneyEnrollment(
        journey=journey,
        version=version,
        contact_id=contact_id,
        current_step=entry,
        next_run_at=now,
        source=source,
        trigger_key=trigger_key,
        entered_at=now,
    )


def enroll_contact(
    *,
    journey: Journey,
    contact: Any,
    actor: Actor,
    request: HttpRequest | None = None,
) -> JourneyEnrollment:
    """Manual enrollment (UI or API): the contact enters the current version now,
    subject to the re-entry rule. Raises :class:`EnrollmentRefused` (with a code).
    Audits ``journey.enroll`` (contact id, enrollment id)."""
    with transaction.atomic():
        journey = _lock(journey)
        version = _enrollable(journey)
        now = timezone.now()
        refused = reentry_block(journey=journey, version=version, contact_id=contact.pk, now=now)
        if refused is not None:
            raise refused
        enrollment = _new_enrollment(
            journey=journey, version=version, contact_id=contact.pk, source="manual", now=now
        )
        enrollment.save()
        audit.record(
            "journey.enroll",
            actor=actor,
            request=request,
            target=journey,
            details={
                "contact_id": contact.pk,
                "enrollment_id": enrollment.pk,
                "version": version.number,
                "source": "manual",
            },
        )
        transaction.on_commit(_enqueue_advance)
    return enrollment


def enrollment_remove(
    *, enrollment: JourneyEnrollment, actor: Actor, request: HttpRequest | None = None
) -> JourneyEnrollment:
    """Take a contact out of a journey now (nothing more is sent to them by it).
    Audits ``journey.unenroll``."""
    with transaction.atomic():
        enrollment = JourneyEnrollment.objects.select_for_update().get(pk=enrollment.pk)
        if enrollment.state != EnrollmentState.ACTIVE:
            raise TransitionError("This contact has already left the journey.")
        enrollment.state = EnrollmentState.CANCELLED
        enrollment.exit_reason = "removed"
        enrollment.finished_at = timezone.now()
        enrollment.next_run_at = None
        enrollment.claim_token = None
        enrollment.lease_until = None
        enrollment.save()
        audit.record(
            "journey.unenroll",
            actor=actor,
            request=request,
            target=enrollment.journey,
            details={"contact_id": enrollment.contact_id, "enrollment_id": enrollment.pk},
        )
    return enrollment


@dataclass
class EventResult:
    event: JourneyEvent
    replay: bool


def _key_hash(journey: Journey, key: str) -> str:
    return hashlib.sha256(f"{journey.uuid}:{key}".encode()).hexdigest()


def journey_event_receive(
    *,
    journey: Journey,
    name: str,
    contact: Any,
    idempotency_key: str,
    actor: Actor,
    occurred_at: dt.datetime | None = None,
    request: HttpRequest | None = None,
) -> EventResult:
    """A trigger event from an EHR/CDP: the contact enters the journey unless the
    re-entry rule says no. Idempotent by ``idempotency_key``: the same key returns the
    first result (``replay``); the same key for another event or contact raises
    :class:`IdempotencyConflict`. Raises :class:`EnrollmentRefused` when the journey
    does not take this event. Audits ``journey.event``."""
    name = name.strip().lower()
    if not d.EVENT_NAME.match(name):
        raise JourneyError("The event name uses lower-case letters, digits, '_', '-' and '.'.")
    key = idempotency_key.strip()
    if not key or len(key) > 200:
        raise JourneyError("Give an idempotency key of 1 to 200 characters.")
    key_hash = _key_hash(journey, key)
    existing = _replay(journey, key_hash, name, contact)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            locked = _lock(journey)
            version = _enrollable(locked)
            trigger = version.trigger or {}
            if trigger.get("kind") != "event":
                raise EnrollmentRefused(
                    "not_event_triggered", "This journey is not started by API events."
                )
            if trigger.get("events") and name not in trigger["events"]:
                raise EnrollmentRefused(
                    "unknown_event",
                    "This journey does not start on that event (see its trigger's event names).",
                )
            now = timezone.now()
            refused = reentry_block(journey=locked, version=version, contact_id=contact.pk, now=now)
            enrollment = None
            if refused is None:
                enrollment = _new_enrollment(
                    journey=locked, version=version, contact_id=contact.pk, source="event", now=now
                )
                enrollment.save()
            event = JourneyEvent.objects.create(
                journey=locked,
                name=name,
                key_hash=key_hash,
                contact=contact,
                enrollment=enrollment,
                outcome="enrolled" if enrollment is not None else (refused.code if refused else ""),
                occurred_at=occurred_at,
            )
            audit.record(
                "journey.event",
                actor=actor,
                request=request,
                target=locked,
                details={
                    "event_id": str(event.uuid),
                    "contact_id": contact.pk,
                    "outcome": event.outcome,
                    "enrollment_id": enrollment.pk if enrollment else None,
                },
            )
            if enrollment is not None:
                transaction.on_commit(_enqueue_advance)
    except IntegrityError:
        # The same key arrived twice at once: the other request stored it first.
        replay = _replay(journey, key_hash, name, contact)
        if replay is None:
            raise
        return replay
    return EventResult(event, replay=False)


def _replay(journey: Journey, key_hash: str, name: str, contact: Any) -> EventResult | None:
    event = JourneyEvent.objects.filter(journey=journey, key_hash=key_hash).first()
    if event is None:
        return None
    if event.name != name or event.contact_id != contact.pk:
        raise IdempotencyConflict(
            "This idempotency key was already used for a different event or contact."
        )
    return EventResult(event, replay=True)
