"""The journey engine: advances due enrollments one step at a time, each step exactly once.

A tick (Celery beat → ``journeys.advance``):

1. **claims** up to ``LUXMAIL_JOURNEY_BATCH`` due enrollments of active journeys with
   ``SELECT … FOR UPDATE SKIP LOCKED``, stamping a claim token and a lease (committed),
   so overlapping ticks and several workers take disjoint sets;
2. per enrollment, runs steps while they are due, **one transaction per step**: lock
   the enrollment row (still ours?), check the goal, insert the ``JourneyStepRun``
   (unique on enrollment, step, seq) *before* any effect, then the effect (queue a
   ``Message``, update the contact, decide a branch, start a wait) and the move to the
   next step — all committed together or not at all;
3. re-queues itself while it found a full batch (Saleor style), and enqueues the send
   pipeline for the step campaigns that got messages.

Why a step never runs twice: its effects commit in the same transaction as its run row
and the enrollment's move past it. A worker killed before the commit leaves nothing (the
database rolls the transaction back) and the enrollment, its lease expired, is claimed
again and runs the step for the first time. A second worker holding a stale claim fails
the claim-token check, and were it to get past it, the run row's unique constraint
aborts its transaction. The only effect outside the database is e-mail, and it happens
later, in the send pipeline, for the ``Message`` row the step committed — which that
pipeline sends at most once (``queued → sending → sent | unknown``). If the enqueue
after the commit is lost, beat's ``campaigns.recover_sending`` restarts the step
campaign's chain.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from campaigns import tasks
from campaigns.journeys import definition as d
from campaigns.journeys import timing
from campaigns.journeys.services import step_campaign_create
from campaigns.models import (
    Campaign,
    CampaignStatus,
    EnrollmentState,
    Journey,
    JourneyEnrollment,
    JourneyStatus,
    JourneyStep,
    JourneyStepCampaign,
    JourneyStepRun,
    Message,
    StepState,
)
from contacts import segments
from contacts import services as contact_services
from contacts.models import Contact, ContactList, ContactStatus
from contacts.selectors import consent_present, is_suppressed
from luxmail import audit, conf
from reporting.selectors import message_engaged

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

# Steps one enrollment may run in one claim (a journey without waits between many
# steps continues at the next tick: no task runs unbounded).
MAX_STEPS_PER_CLAIM = 25
# How long to look again when a branch waits for a message still being sent.
RECHECK = dt.timedelta(minutes=15)


def batch_size() -> int:
    return conf.journey_batch()


def lease_seconds() -> int:
    return conf.journey_lease_seconds()


@dataclass
class AdvanceReport:
    claimed: int = 0
    steps: int = 0
    messages: int = 0
    finished: int = 0
    conflicts: int = 0
    failed: int = 0
    campaigns: set[int] = field(default_factory=set)
    messages_by_journey: Counter[int] = field(default_factory=Counter)


@dataclass
class Result:
    outcome: str
    detail: str = ""
    next_key: str | None = None
    wait_until: dt.datetime | None = None
    finish: tuple[str, str] | None = None
    message: Any = None
    postpone_until: dt.datetime | None = None


# --- claims ------------------------------------------------------------------------------


def claim(*, limit: int, now: dt.datetime) -> tuple[uuid.UUID, list[int]]:
    """Claim up to ``limit`` due enrollments of active journeys (a short transaction).

    ``SKIP LOCKED`` makes concurrent ticks take disjoint rows; the lease makes rows a
    dead worker claimed claimable again once it expires.
    """
    token = uuid.uuid4()
    with transaction.atomic():
        ids = list(
            JourneyEnrollment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                state=EnrollmentState.ACTIVE,
                next_run_at__lte=now,
                journey__status=JourneyStatus.ACTIVE,
            )
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .order_by("next_run_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            JourneyEnrollment.objects.filter(id__in=ids).update(
                claim_token=token, lease_until=now + dt.timedelta(seconds=lease_seconds())
            )
    return token, ids


def advance_due(
    *, limit: int | None = None, clock: Clock = timezone.now, enqueue: bool = True
) -> AdvanceReport:
    """Claim one bounded batch of due enrollments and run their due steps.

    Idempotent and safe to run concurrently (see the module docstring). Enqueues the
    send pipeline for step campaigns that got messages (unless ``enqueue`` is false:
    the caller delivers), and audits ``journey.messages_queued`` per journey (counts
    only). ``clock`` is the engine's time (waits, windows, step runs); the demo data
    replays a journey's past with it.
    """
    report = AdvanceReport()
    token, ids = claim(limit=limit or batch_size(), now=clock())
    report.claimed = len(ids)
    for enrollment_id in ids:
        try:
            advance_enrollment(enrollment_id=enrollment_id, token=token, report=report, clock=clock)
        except Exception:
            # One enrollment's failure must not stop the batch: its step rolled back,
            # and it is claimed again when its lease expires.
            report.failed += 1
            logger.exception("journey enrollment %s failed; retried later", enrollment_id)
    _after_batch(report, enqueue=enqueue)
    return report


def _after_batch(report: AdvanceReport, *, enqueue: bool = True) -> None:
    if report.messages_by_journey:
        for journey_id, count in sorted(report.messages_by_journey.items()):
            journey = Journey.objects.filter(pk=journey_id).first()
            if journey is not None:
                audit.record(
                    "journey.messages_queued",
                    actor=None,
                    target=journey,
                    details={"messages": count},
                )
    if report.campaigns and enqueue:
        for campaign_id in sorted(report.campaigns):
            tasks.send_batch.delay(campaign_id)


def advance_enrollment(
    *,
    enrollment_id: int,
    token: uuid.UUID,
    report: AdvanceReport | None = None,
    clock: Clock = timezone.now,
) -> None:
    """Run the claimed enrollment's due steps (each in its own transaction)."""
    report = report if report is not None else AdvanceReport()
    for _ in range(MAX_STEPS_PER_CLAIM):
        try:
            more = _step_once(enrollment_id, token, report, clock)
        except IntegrityError:
            # Another worker already ran this step (its run row exists): ours rolled
            # back entirely. Leave the enrollment to whoever holds it now.
            report.conflicts += 1
            logger.warning("journey step already run for enrollment %s; skipped", enrollment_id)
            return
        if not more:
            return
    # Cap reached: give the enrollment back, due now, for the next tick.
    JourneyEnrollment.objects.filter(pk=enrollment_id, claim_token=token).update(
        claim_token=None, lease_until=None, next_run_at=clock()
    )


def _release(enrollment: JourneyEnrollment) -> None:
    enrollment.claim_token = None
    enrollment.lease_until = None
    enrollment.save(
        update_fields=["claim_token", "lease_until", "next_run_at", "step_state", "seq"]
    )


def _finish(enrollment: JourneyEnrollment, state: str, reason: str, now: dt.datetime) -> None:
    enrollment.state = state
    enrollment.exit_reason = reason
    enrollment.finished_at = now
    enrollment.next_run_at = None
    enrollment.claim_token = None
    enrollment.lease_until = None
    enrollment.save(
        update_fields=[
            "state",
            "exit_reason",
            "finished_at",
            "next_run_at",
            "claim_token",
            "lease_until",
            "seq",
        ]
    )


def _step_once(enrollment_id: int, token: uuid.UUID, report: AdvanceReport, clock: Clock) -> bool:
    """One step of one enrollment in one transaction; True when another may follow."""
    with transaction.atomic():
        enrollment = (
            JourneyEnrollment.objects.select_for_update(of=("self",))
            .select_related("journey", "version", "current_step", "contact")
            .filter(pk=enrollment_id, claim_token=token)
            .first()
        )
        if enrollment is None:
            return False  # the lease expired and someone else holds it now
        now = clock()
        if (
            enrollment.state != EnrollmentState.ACTIVE
            or enrollment.journey.status != JourneyStatus.ACTIVE
            or (enrollment.next_run_at is not None and enrollment.next_run_at > now)
        ):
            _release(enrollment)
            return False
        if enrollment.version.goal and _goal_met(enrollment, now):
            _finish(enrollment, EnrollmentState.GOAL, "goal", now)
            report.finished += 1
            return False
        step = enrollment.current_step
        if step is None:
            _finish(enrollment, EnrollmentState.EXITED, "no_step", now)
            return False
        if enrollment.step_state == StepState.WAITING:
            return _resume_wait(enrollment, step, now, report)
        run = JourneyStepRun.objects.create(
            enrollment=enrollment, step=step, seq=enrollment.seq, created_at=now
        )
        result = EXECUTORS[step.kind](enrollment, step, now, report)
        if result.postpone_until is not None:
            # Not decidable yet (a branch waiting for engagement): nothing happened.
            run.delete()
            enrollment.next_run_at = result.postpone_until
            _release(enrollment)
            return False
        run.outcome = result.outcome
        run.detail = result.detail[:100]
        run.message = result.message
        run.save(update_fields=["outcome", "detail", "message"])
        report.steps += 1
        enrollment.seq += 1
        if result.finish is not None:
            _finish(enrollment, *result.finish, now)
            report.finished += 1
            return False
        if result.wait_until is not None:
            enrollment.step_state = StepState.WAITING
            enrollment.next_run_at = result.wait_until
            if result.wait_until <= now:
                enrollment.save(update_fields=["step_state", "next_run_at", "seq"])
                return True
            _release(enrollment)
            return False
        return _move(enrollment, result.next_key or "", now, report)


def _move(enrollment: JourneyEnrollment, key: str, now: dt.datetime, report: AdvanceReport) -> bool:
    following = JourneyStep.objects.filter(version_id=enrollment.version_id, key=key).first()
    if following is None:
        # Published versions have no dead ends; a step deleted under us ends the run.
        _finish(enrollment, EnrollmentState.EXITED, "dead_end", now)
        report.finished += 1
        return False
    enrollment.current_step = following
    enrollment.step_state = StepState.PENDING
    enrollment.next_run_at = now
    enrollment.save(update_fields=["current_step", "step_state", "next_run_at", "seq"])
    return True


# --- goal, waits ---------------------------------------------------------------------------


class RulesInvalid(Exception):
    """A stored rule tree no longer validates (a list or custom field was deleted)."""


def _contact_matches(contact_id: int, rules: Any, tz_name: str, now: dt.datetime) -> bool:
    """Whether the contact matches ``rules`` today in their time zone (one query).
    Raises :class:`RulesInvalid` when the rules refer to something deleted since."""

    ctx = segments.Context(today=timing.local_date(tz_name, now), now=now)
    try:
        q = segments.compile_rules(rules, ctx)
    except segments.SegmentRuleError:
        raise RulesInvalid from None
    return Contact.objects.filter(pk=contact_id).filter(q).exists()


def _goal_met(enrollment: JourneyEnrollment, now: dt.datetime) -> bool:
    try:
        return _contact_matches(
            enrollment.contact_id, enrollment.version.goal, enrollment.contact.time_zone, now
        )
    except RulesInvalid:
        # A goal that cannot be evaluated any more is never reached; the journey goes on.
        logger.warning("goal of journey version %s no longer valid", enrollment.version_id)
        return False


def _date_wait(
    enrollment: JourneyEnrollment, config: dict[str, Any], now: dt.datetime
) -> str | dt.datetime:
    """``"ready"``, ``"missing"`` or when to look again, for "wait until <field> + offset
    days at HH:MM" — answered from the field's date tokens, never by decrypting it."""
    tz_name = enrollment.contact.time_zone
    tz = timing.zone(tz_name)
    clock = timing.parse_clock(config["at"])
    field_name = config["field"]
    try:
        if not _contact_matches(
            enrollment.contact_id,
            {"field": field_name, "op": "exists", "value": True},
            tz_name,
            now,
        ):
            return "missing"
        # Ready when the target day's HH:MM has passed: field + offset <= the last such day.
        day = timing.last_clock_day(tz, clock, now) - dt.timedelta(days=int(config["offset_days"]))
        if _contact_matches(
            enrollment.contact_id,
            {"field": field_name, "op": "lte", "value": day.isoformat()},
            tz_name,
            now,
        ):
            return "ready"
    except RulesInvalid:
        return "missing"  # the date field was deleted since publishing
    return timing.next_clock(tz, clock, now)


def _resume_wait(
    enrollment: JourneyEnrollment, step: JourneyStep, now: dt.datetime, report: AdvanceReport
) -> bool:
    config = step.config
    if config.get("mode") == "until_date":
        state = _date_wait(enrollment, config, now)
        if isinstance(state, dt.datetime):
            enrollment.next_run_at = state
            _release(enrollment)
            return False
        if state == "missing" and config.get("if_missing", "exit") == "exit":
            _finish(enrollment, EnrollmentState.EXITED, "date_missing", now)
            report.finished += 1
            return False
    return _move(enrollment, step.next_key, now, report)


# --- executors ---------------------------------------------------------------------------


def _run_wait(
    enrollment: JourneyEnrollment, step: JourneyStep, now: dt.datetime, report: AdvanceReport
) -> Result:
    config = step.config
    mode = config.get("mode")
    if mode == "duration":
        return Result("waiting", wait_until=now + timing.duration(config))
    if mode == "window":
        tz = timing.zone(enrollment.contact.time_zone)
        return Result("waiting", wait_until=timing.window_start(config, tz, now))
    # until_date: looked at right away by _resume_wait, then at HH:MM each day.
    return Result("waiting", wait_until=now)


def _send_purpose(enrollment: JourneyEnrollment, phi_bearing: bool) -> str:
    if enrollment.version.consent == "transactional":
        return "transactional"
    return "phi_marketing" if phi_bearing else "marketing"


def _run_send(
    enrollment: JourneyEnrollment, step: JourneyStep, now: dt.datetime, report: AdvanceReport
) -> Result:

    contact = enrollment.contact
    step_campaign = step_campaign_for(step=step, contact_id=contact.pk)
    campaign = step_campaign.campaign
    following = step.next_key
    # Consent and suppression are checked again now, before the message exists (and
    # once more by the pipeline when it claims the message).
    if contact.status != ContactStatus.ACTIVE:
        return Result("skipped", "contact not active", next_key=following)
    if is_suppressed(contact=contact):
        return Result("skipped", "address suppressed", next_key=following)
    if not consent_present(
        contact=contact, purpose=_send_purpose(enrollment, campaign.frozen_phi_bearing)
    ):
        return Result("skipped", "no consent", next_key=following)
    if campaign.status == CampaignStatus.CANCELLED:
        return Result("skipped", "step campaign cancelled", next_key=following)
    message = Message.objects.create(campaign=campaign, contact=contact)
    # Takes the campaign row's lock even when it is already sending, so a concurrent
    # campaign_finish_if_done either sees this message or is undone by this update.
    Campaign.objects.filter(pk=campaign.pk).update(
        recipients=F("recipients") + 1,
        status=Case(
            When(status=CampaignStatus.SENT, then=Value(CampaignStatus.SENDING)),
            default=F("status"),
        ),
        finished_at=Case(
            When(status=CampaignStatus.SENT, then=Value(None, output_field=DateTimeField())),
            default=F("finished_at"),
        ),
    )
    report.messages += 1
    report.messages_by_journey[enrollment.journey_id] += 1
    report.campaigns.add(campaign.pk)
    return Result("queued", message=message, next_key=following)


def step_campaign_for(*, step: JourneyStep, contact_id: int) -> JourneyStepCampaign:
    """The step's campaign that has no message for this contact yet (a new round is
    created from the first round's frozen content when all have one)."""

    rounds = list(
        JourneyStepCampaign.objects.filter(step=step).select_related("campaign").order_by("round")
    )
    if not rounds:
        raise RuntimeError(f"send step {step.pk} was published without a campaign")
    used = set(
        Message.objects.filter(
            campaign_id__in=[r.campaign_id for r in rounds], contact_id=contact_id
        ).values_list("campaign_id", flat=True)
    )
    for candidate in rounds:
        if candidate.campaign_id not in used:
            return candidate

    return step_campaign_create(
        step=step, round=rounds[-1].round + 1, template_from=rounds[0].campaign
    )


def _run_branch(
    enrollment: JourneyEnrollment, step: JourneyStep, now: dt.datetime, report: AdvanceReport
) -> Result:
    config = step.config
    if config.get("mode") == "segment":
        try:
            matched = _contact_matches(
                enrollment.contact_id, config["rules"], enrollment.contact.time_zone, now
            )
        except RulesInvalid:
            return Result("no", "condition no longer valid", next_key=step.no_key)
    else:
        decided = engagement(enrollment=enrollment, config=config, now=now)
        if isinstance(decided, dt.datetime):
            return Result("", postpone_until=decided)
        matched = decided
    if matched:
        return Result("yes", next_key=step.next_key)
    return Result("no", next_key=step.no_key)


def engagement(
    *, enrollment: JourneyEnrollment, config: dict[str, Any], now: dt.datetime
) -> bool | dt.datetime:
    """Whether the enrollment's message of an earlier send step was opened/clicked by a
    *human* within N days of being sent — or when to look again if that is not known
    yet (the message is still on its way, or the window is still open without an
    event). Automated and unknown events never count here."""

    event = config["event"]
    kinds = ("click",) if event in ("clicked", "not_clicked") else ("open", "click")
    positive = event in ("opened", "clicked")
    run = (
        JourneyStepRun.objects.filter(
            enrollment=enrollment, step__key=config["step"], step__version_id=enrollment.version_id
        )
        .select_related("message")
        .order_by("-seq")
        .first()
    )
    message = run.message if run is not None else None
    if message is None:
        return not positive  # never sent to this contact: not engaged
    if message.state in ("queued", "sending", "deferred"):
        return now + RECHECK
    assert run is not None
    # The window starts when the send step ran (the engine's clock, like every wait),
    # not at the relay's answer a few seconds later.
    window_end = run.created_at + dt.timedelta(days=int(config["within_days"]))
    engaged = message_engaged(message_id=message.pk, kinds=kinds, before=window_end)
    if engaged:
        return positive
    if now < window_end:
        return window_end
    return not positive


def _run_update(
    enrollment: JourneyEnrollment, step: JourneyStep, now: dt.datetime, report: AdvanceReport
) -> Result:

    config = step.config
    actor = f"journey:{enrollment.journey_id}"
    following = step.next_key
    if config.get("action") == "set_field":
        try:
            contact_services.contact_update(
                contact=enrollment.contact, data={config["field"]: config.get("value")}, actor=actor
            )
        except contact_services.ContactsError:
            return Result("failed", "field could not be set", next_key=following)
        return Result("updated", next_key=following)
    contact_list = ContactList.objects.filter(pk=config.get("list") or 0).first()
    if contact_list is None:
        return Result("failed", "list no longer exists", next_key=following)
    if config["action"] == "add_to_list":
        contact_services.list_members_add(
            contact_list=contact_list, contact_ids=[enrollment.contact_id], actor=actor
        )
    else:
        contact_services.list_members_remove(
            contact_list=contact_list, contact_ids=[enrollment.contact_id], actor=actor
        )
    return Result("updated", next_key=following)


def _run_exit(
    enrollment: JourneyEnrollment, step: JourneyStep, now: dt.datetime, report: AdvanceReport
) -> Result:
    return Result("exited", finish=(EnrollmentState.EXITED, "exit_step"))


EXECUTORS = {
    d.SEND: _run_send,
    d.WAIT: _run_wait,
    d.BRANCH: _run_branch,
    d.UPDATE: _run_update,
    d.EXIT: _run_exit,
}
