"""Publishing and status: step campaigns, publish, activate, pause, resume, archive."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns import services as campaign_services
from campaigns.journeys import definition as d
from campaigns.journeys import jobs
from campaigns.journeys.definition import DefinitionError
from campaigns.journeys.services.definitions import draft_version, version_problems
from campaigns.journeys.services.errors import TransitionError, _lock, _user
from campaigns.models import (
    Campaign,
    CampaignStatus,
    EmailTemplate,
    EnrollmentState,
    Journey,
    JourneySeen,
    JourneyStatus,
    JourneyStep,
    JourneyStepCampaign,
    JourneyVersion,
    SenderIdentity,
)
from luxmail import audit, org
from luxmail.actors import Actor

# --- publishing and status ------------------------------------------------------------------


def step_campaign_create(
    *, step: JourneyStep, round: int, template_from: Any = None
) -> JourneyStepCampaign:
    """The hidden campaign of a send step (round 1 at publishing; later rounds copy the
    first round's frozen content). It is ``sending`` from the start: the engine adds
    messages and the send pipeline delivers them like any campaign's."""

    version = step.version
    journey = version.journey
    config = step.config
    now = timezone.now()
    if template_from is not None:
        frozen = {
            "subject": template_from.frozen_subject,
            "html": template_from.frozen_html,
            "text": template_from.frozen_text,
        }
        phi_bearing = template_from.frozen_phi_bearing
        template = template_from.template
        sender = template_from.sender
        policy = template_from.secure_policy
    else:
        template = EmailTemplate.objects.get(pk=config["template"])
        sender = SenderIdentity.objects.get(pk=config["sender"])
        frozen = campaign_services._with_footer(
            subject=template.subject, html=template.html, text=template.text
        )
        phi_bearing = template.phi_bearing
        policy = config.get("secure_policy") or org.get_settings().default_secure_policy
    label = f"Journey {journey.name} · v{version.number} · {step.name or step.key}"
    if round > 1:
        label += f" · repeat {round}"
    campaign = Campaign.objects.create(
        name=label[:200],
        marketing_id=f"JOURNEY-{journey.pk}",
        report_field=f"{journey.name}"[:200],
        template=template,
        sender=sender,
        secure_policy=policy,
        encrypted_subject_visible=bool(config.get("encrypted_subject_visible")),
        track_opens=bool(config.get("track_opens", True)),
        track_clicks=bool(config.get("track_clicks", True)),
        transactional=version.consent == "transactional",
        status=CampaignStatus.SENDING,
        frozen_subject=frozen["subject"],
        frozen_html=frozen["html"],
        frozen_text=frozen["text"],
        frozen_phi_bearing=phi_bearing,
        started_at=now,
        last_batch_at=now,
    )
    try:
        with transaction.atomic():
            return JourneyStepCampaign.objects.create(step=step, round=round, campaign=campaign)
    except IntegrityError:
        # Another worker created this round at the same moment: use theirs.
        campaign.delete()
        return JourneyStepCampaign.objects.select_related("campaign").get(step=step, round=round)


def _publish(journey: Journey, actor: Actor) -> JourneyVersion:
    draft = draft_version(journey)
    if draft is None:
        raise TransitionError("There are no changes to publish.")
    found = version_problems(draft)
    if found:
        raise DefinitionError(found)
    previous = journey.current_version
    draft.published_at = timezone.now()
    draft.published_by = _user(actor)
    draft.save(update_fields=["published_at", "published_by"])
    for step in draft.steps.filter(kind=d.SEND):
        step_campaign_create(step=step, round=1)
    if previous is None or _audience_trigger(previous.trigger) != _audience_trigger(draft.trigger):
        # A new audience: who is already in it is seen afresh (and enrolled only when
        # the trigger says to include existing members).
        JourneySeen.objects.filter(journey=journey).delete()
        journey.seen_primed_at = (
            timezone.now() if (draft.trigger or {}).get("include_existing") else None
        )
    journey.current_version = draft
    journey.save(update_fields=["current_version", "seen_primed_at", "updated_at"])
    return draft


def _audience_trigger(trigger: Mapping[str, Any] | None) -> tuple[Any, ...]:
    trigger = trigger or {}
    kind = trigger.get("kind")
    if kind in ("segment", "list"):
        return (kind, trigger.get(kind))
    return (kind,)


def journey_publish(
    *, journey: Journey, actor: Actor, request: HttpRequest | None = None
) -> JourneyVersion:
    """Make the draft the current version (checked first: no dead ends, no send step
    without a template …). New enrollments use it; running ones finish on theirs.
    Raises :class:`DefinitionError` with every problem. Audits ``journey.publish``."""
    with transaction.atomic():
        journey = _lock(journey)
        if journey.status == JourneyStatus.ARCHIVED:
            raise TransitionError("An archived journey cannot be published.")
        if journey.status == JourneyStatus.DRAFT:
            raise TransitionError("Activate the journey to publish its first version.")
        version = _publish(journey, actor)
        audit.record(
            "journey.publish",
            actor=actor,
            request=request,
            target=journey,
            details={"version": version.number, "steps": version.steps.count()},
        )
    return version


def journey_activate(
    *, journey: Journey, actor: Actor, request: HttpRequest | None = None
) -> Journey:
    """Draft → active: publish the draft (validated) and start enrolling. A paused
    journey is resumed. Raises :class:`DefinitionError` / :class:`TransitionError`.
    Audits ``journey.activate`` (and ``journey.publish``)."""
    if journey.status == JourneyStatus.PAUSED:
        return journey_resume(journey=journey, actor=actor, request=request)
    with transaction.atomic():
        journey = _lock(journey)
        if journey.status != JourneyStatus.DRAFT:
            raise TransitionError(
                f"A {journey.get_status_display().lower()} journey cannot be activated."
            )
        version = _publish(journey, actor)
        journey.status = JourneyStatus.ACTIVE
        journey.activated_at = timezone.now()
        journey.save(update_fields=["status", "activated_at", "updated_at"])
        audit.record(
            "journey.publish",
            actor=actor,
            request=request,
            target=journey,
            details={"version": version.number, "steps": version.steps.count()},
        )
        audit.record(
            "journey.activate",
            actor=actor,
            request=request,
            target=journey,
            details={"version": version.number, "trigger": (version.trigger or {}).get("kind")},
        )
        transaction.on_commit(_enqueue_triggers)
    return journey


def _step_campaigns(journey: Journey) -> Any:

    return Campaign.objects.filter(journey_step__step__version__journey=journey)


def journey_pause(*, journey: Journey, actor: Actor, request: HttpRequest | None = None) -> Journey:
    """active → paused: no enrollment moves and the journey's queued messages wait
    (its step campaigns pause). Triggers still enroll, held until resumed. Audits
    ``journey.pause``."""

    with transaction.atomic():
        journey = _lock(journey)
        if journey.status != JourneyStatus.ACTIVE:
            raise TransitionError("Only an active journey can be paused.")
        journey.status = JourneyStatus.PAUSED
        journey.save(update_fields=["status", "updated_at"])
        paused = (
            _step_campaigns(journey)
            .filter(status=CampaignStatus.SENDING)
            .update(status=CampaignStatus.PAUSED)
        )
        audit.record(
            "journey.pause",
            actor=actor,
            request=request,
            target=journey,
            details={
                "active_enrollments": journey.enrollments.filter(
                    state=EnrollmentState.ACTIVE
                ).count(),
                "step_campaigns_paused": paused,
            },
        )
    return journey


def journey_resume(
    *, journey: Journey, actor: Actor, request: HttpRequest | None = None
) -> Journey:
    """paused → active: held enrollments continue (overdue waits end at once) and the
    step campaigns send again. Audits ``journey.resume``."""

    with transaction.atomic():
        journey = _lock(journey)
        if journey.status != JourneyStatus.PAUSED:
            raise TransitionError("Only a paused journey can be resumed.")
        journey.status = JourneyStatus.ACTIVE
        journey.save(update_fields=["status", "updated_at"])
        campaigns = list(
            _step_campaigns(journey)
            .filter(status=CampaignStatus.PAUSED)
            .values_list("pk", flat=True)
        )
        _step_campaigns(journey).filter(pk__in=campaigns).update(status=CampaignStatus.SENDING)
        audit.record(
            "journey.resume",
            actor=actor,
            request=request,
            target=journey,
            details={"step_campaigns_resumed": len(campaigns)},
        )
        for campaign_id in campaigns:
            transaction.on_commit(partial(campaign_services._enqueue_chains, campaign_id))
        transaction.on_commit(_enqueue_advance)
    return journey


def journey_archive(
    *, journey: Journey, actor: Actor, request: HttpRequest | None = None
) -> Journey:
    """Stop a journey for good: active enrollments are removed and its step campaigns'
    unsent messages cancelled. Audits ``journey.archive``."""

    with transaction.atomic():
        journey = _lock(journey)
        if journey.status == JourneyStatus.ARCHIVED:
            raise TransitionError("This journey is already archived.")
        now = timezone.now()
        removed = journey.enrollments.filter(state=EnrollmentState.ACTIVE).update(
            state=EnrollmentState.CANCELLED,
            exit_reason="journey_archived",
            finished_at=now,
            next_run_at=None,
            claim_token=None,
            lease_until=None,
        )
        journey.status = JourneyStatus.ARCHIVED
        journey.save(update_fields=["status", "updated_at"])
        open_campaigns = list(
            _step_campaigns(journey).filter(
                status__in=(CampaignStatus.SENDING, CampaignStatus.PAUSED)
            )
        )
        for campaign in open_campaigns:
            campaign_services.campaign_cancel(campaign=campaign, actor=actor, request=request)
        audit.record(
            "journey.archive",
            actor=actor,
            request=request,
            target=journey,
            details={
                "enrollments_removed": removed,
                "step_campaigns_cancelled": len(open_campaigns),
            },
        )
    return journey


def _enqueue_advance() -> None:
    jobs.ADVANCE.delay()


def _enqueue_triggers() -> None:
    jobs.EVALUATE_TRIGGERS.delay()
