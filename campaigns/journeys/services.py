"""Writes of journeys: create, edit the draft, publish, activate, pause, resume, archive,
enroll (manual and API events). Each service owns its transaction and audits what it
changes with ids and counts only (docs/architecture.md "Journeys").

Editing never touches a published version: the first edit of a journey that has one
copies it into a draft (version N+1); publishing the draft makes it current for new
enrollments while running enrollments finish on the version they started on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.journeys import definition as d
from campaigns.journeys.definition import DefinitionError, JourneyError, Problem
from campaigns.models import (
    EnrollmentState,
    Journey,
    JourneyEnrollment,
    JourneyEvent,
    JourneySeen,
    JourneyStatus,
    JourneyStep,
    JourneyStepCampaign,
    JourneyVersion,
)
from luxmail import audit

PHI_REFUSED = (
    "This journey selects or writes contacts by PHI (health profile or PHI fields); only "
    "the PHI Marketer and Admin roles may change it."
)


class PhiRefused(JourneyError):
    """The journey uses PHI criteria and the actor may not work with PHI."""


class TransitionError(JourneyError):
    """The journey's status does not allow this action."""


class EnrollmentRefused(JourneyError):
    """The contact may not enter the journey now; ``code`` says why (no PHI)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class IdempotencyConflict(JourneyError):
    """An idempotency key was reused for a different event."""


def _user(actor: Any) -> Any:
    from django.contrib.auth import get_user_model

    return actor if isinstance(actor, get_user_model()) else None


def _may_use_phi(actor: Any, allow_phi: bool | None) -> bool:
    if allow_phi is not None:
        return allow_phi
    return bool(getattr(actor, "has_perm", lambda _: False)("luxmail.view_phi"))


def _lock(journey: Journey) -> Journey:
    return Journey.objects.select_for_update().get(pk=journey.pk)


# --- definitions ----------------------------------------------------------------------------


def definition_of(version: JourneyVersion) -> dict[str, Any]:
    """The version as a definition (the API's JSON), steps in flow order."""
    steps = {s.key: s for s in version.steps.all()}
    order: list[str] = []
    queue = deque([version.entry_key])
    while queue:
        key = queue.popleft()
        if key in order or key not in steps:
            continue
        order.append(key)
        queue.extend(k for k in (steps[key].next_key, steps[key].no_key) if k)
    order += sorted((k for k in steps if k not in order), key=lambda k: steps[k].pk)
    return {
        "trigger": version.trigger or {"kind": "manual"},
        "reentry": version.reentry or {"mode": "once"},
        "goal": version.goal,
        "consent": version.consent,
        "entry": version.entry_key,
        "steps": [
            {
                "key": s.key,
                "kind": s.kind,
                "name": s.name,
                "config": s.config,
                "next": s.next_key,
                "no": s.no_key,
            }
            for s in (steps[k] for k in order)
        ],
    }


def version_problems(version: JourneyVersion) -> list[Problem]:
    return d.problems(definition_of(version))


def _default_definition() -> dict[str, Any]:
    return {
        "trigger": {"kind": "manual"},
        "reentry": {"mode": "once"},
        "goal": None,
        "consent": "marketing",
        "entry": "exit",
        "steps": [{"key": "exit", "kind": d.EXIT, "name": "Exit", "config": {}}],
    }


def _write_definition(version: JourneyVersion, cleaned: Mapping[str, Any]) -> None:
    version.trigger = cleaned["trigger"]
    version.reentry = cleaned["reentry"]
    version.goal = cleaned["goal"]
    version.consent = cleaned["consent"]
    version.entry_key = cleaned["entry"]
    version.save(update_fields=["trigger", "reentry", "goal", "consent", "entry_key"])
    version.steps.all().delete()
    JourneyStep.objects.bulk_create(
        [
            JourneyStep(
                version=version,
                key=s["key"],
                kind=s["kind"],
                name=s["name"],
                config=s["config"],
                next_key=s["next"],
                no_key=s["no"],
            )
            for s in cleaned["steps"]
        ]
    )


def _check_phi(actor: Any, allow_phi: bool | None, *definitions: Mapping[str, Any]) -> None:
    if _may_use_phi(actor, allow_phi):
        return
    if any(d.uses_phi(item) for item in definitions):
        raise PhiRefused(PHI_REFUSED)


def journey_create(
    *,
    name: str,
    actor: Any,
    description: str = "",
    definition: Mapping[str, Any] | None = None,
    allow_phi: bool | None = None,
    request: HttpRequest | None = None,
) -> Journey:
    """Create a draft journey with version 1 (a draft). Without ``definition`` it has a
    manual trigger and a single exit step, to be built in the UI.

    Raises :class:`DefinitionError` (malformed definition) or :class:`JourneyError`
    (name taken, PHI criteria without a PHI role). Audits ``journey.create``.
    """
    name = " ".join(name.split())
    if not name:
        raise JourneyError("A journey needs a name.")
    cleaned = d.clean(definition if definition is not None else _default_definition())
    _check_phi(actor, allow_phi, cleaned)
    with transaction.atomic():
        if Journey.objects.filter(name=name).exists():
            raise JourneyError(f"A journey named '{name}' already exists.")
        journey = Journey.objects.create(
            name=name, description=description.strip(), created_by=_user(actor)
        )
        version = JourneyVersion.objects.create(journey=journey, number=1)
        _write_definition(version, cleaned)
        audit.record(
            "journey.create",
            actor=actor,
            request=request,
            target=journey,
            details={"steps": len(cleaned["steps"]), "trigger": cleaned["trigger"]["kind"]},
        )
    return journey


def journey_update(
    *,
    journey: Journey,
    actor: Any,
    name: str | None = None,
    description: str | None = None,
    request: HttpRequest | None = None,
) -> Journey:
    """Rename or describe a journey (not versioned). Audits ``journey.update``."""
    with transaction.atomic():
        journey = _lock(journey)
        changed = []
        if name is not None:
            name = " ".join(name.split())
            if not name:
                raise JourneyError("A journey needs a name.")
            if Journey.objects.filter(name=name).exclude(pk=journey.pk).exists():
                raise JourneyError(f"A journey named '{name}' already exists.")
            if name != journey.name:
                journey.name = name
                changed.append("name")
        if description is not None and description.strip() != journey.description:
            journey.description = description.strip()
            changed.append("description")
        if changed:
            journey.save()
            audit.record(
                "journey.update",
                actor=actor,
                request=request,
                target=journey,
                details={"changed": changed},
            )
    return journey


def draft_version(journey: Journey) -> JourneyVersion | None:
    return JourneyVersion.objects.filter(journey=journey, published_at__isnull=True).first()


def _draft_for_edit(journey: Journey, actor: Any, request: HttpRequest | None) -> JourneyVersion:
    """The journey's draft, copied from the current version when there is none (the
    caller holds the journey's lock). Archived journeys cannot be edited."""
    if journey.status == JourneyStatus.ARCHIVED:
        raise TransitionError("An archived journey cannot be edited.")
    draft = draft_version(journey)
    if draft is not None:
        return draft
    current = journey.current_version
    assert current is not None, "a journey has a draft or a current version"
    number = JourneyVersion.objects.filter(journey=journey).order_by("-number").first()
    draft = JourneyVersion.objects.create(
        journey=journey, number=(number.number if number else 0) + 1
    )
    _write_definition(draft, d.clean(definition_of(current)))
    audit.record(
        "journey.draft",
        actor=actor,
        request=request,
        target=journey,
        details={"version": draft.number, "from_version": current.number},
    )
    return draft


def journey_set_definition(
    *,
    journey: Journey,
    definition: Mapping[str, Any],
    actor: Any,
    allow_phi: bool | None = None,
    request: HttpRequest | None = None,
) -> JourneyVersion:
    """Replace the draft's whole definition (creating the draft if needed); publishing
    is a separate step. Raises :class:`DefinitionError`. Audits ``journey.edit``."""
    cleaned = d.clean(definition)
    with transaction.atomic():
        journey = _lock(journey)
        draft = _draft_for_edit(journey, actor, request)
        _check_phi(actor, allow_phi, definition_of(draft), cleaned)
        _write_definition(draft, cleaned)
        audit.record(
            "journey.edit",
            actor=actor,
            request=request,
            target=journey,
            details={"version": draft.number, "steps": len(cleaned["steps"])},
        )
    return draft


def journey_set_settings(
    *,
    journey: Journey,
    actor: Any,
    trigger: Mapping[str, Any] | None = None,
    reentry: Mapping[str, Any] | None = None,
    goal: Any = ...,
    consent: str | None = None,
    allow_phi: bool | None = None,
    request: HttpRequest | None = None,
) -> JourneyVersion:
    """Change the draft's trigger, re-entry rule, goal (``None`` removes it) or consent.
    Raises :class:`DefinitionError`. Audits ``journey.edit``."""
    with transaction.atomic():
        journey = _lock(journey)
        draft = _draft_for_edit(journey, actor, request)
        before = definition_of(draft)
        after = dict(before)
        changed = []
        if trigger is not None:
            after["trigger"] = d.clean_trigger(trigger)
            changed.append("trigger")
        if reentry is not None:
            after["reentry"] = d.clean_reentry(reentry)
            changed.append("reentry")
        if goal is not ...:
            after["goal"] = d.clean_goal(goal)
            changed.append("goal")
        if consent is not None:
            after["consent"] = d.clean_consent(consent)
            changed.append("consent")
        _check_phi(actor, allow_phi, before, after)
        draft.trigger = after["trigger"]
        draft.reentry = after["reentry"]
        draft.goal = after["goal"]
        draft.consent = after["consent"]
        draft.save(update_fields=["trigger", "reentry", "goal", "consent"])
        audit.record(
            "journey.edit",
            actor=actor,
            request=request,
            target=journey,
            details={"version": draft.number, "changed": changed},
        )
    return draft


# --- step edits (the builder) -------------------------------------------------------------


def _new_key(version: JourneyVersion) -> str:
    numbers = [
        int(match.group(1))
        for key in version.steps.values_list("key", flat=True)
        if (match := re.fullmatch(r"s(\d+)", key))
    ]
    return f"s{max(numbers, default=0) + 1}"


def _default_config(kind: str) -> dict[str, Any]:
    if kind == d.WAIT:
        return {"mode": "duration", "days": 1, "hours": 0, "minutes": 0}
    if kind == d.BRANCH:
        return {"mode": "segment", "rules": None}
    if kind == d.UPDATE:
        return {"action": "set_field", "field": "", "value": None}
    return d.clean_step_config(kind, {})


def step_add(
    *,
    journey: Journey,
    kind: str,
    actor: Any,
    after: str = "",
    path: str = "next",
    allow_phi: bool | None = None,
    request: HttpRequest | None = None,
) -> JourneyStep:
    """Insert a step after step ``after`` (on its ``path``: ``next``/``yes`` or ``no``
    for a branch), or first when ``after`` is empty; it continues where that path went.
    A new branch sends both paths there. An exit only ends a path. Audits
    ``journey.edit``."""
    if kind not in d.KINDS:
        raise JourneyError("Choose what the new step does.")
    with transaction.atomic():
        journey = _lock(journey)
        draft = _draft_for_edit(journey, actor, request)
        _check_phi(actor, allow_phi, definition_of(draft))
        before: JourneyStep | None = None
        if after:
            before = draft.steps.filter(key=after).first()
            if before is None:
                raise JourneyError("That step no longer exists; reload the page.")
            if before.kind == d.EXIT:
                raise JourneyError("Nothing can follow an exit step.")
        attribute = "no_key" if path == "no" else "next_key"
        if before is not None and before.kind != d.BRANCH:
            attribute = "next_key"
        continuation = getattr(before, attribute) if before is not None else draft.entry_key
        if kind == d.EXIT and continuation:
            raise JourneyError(
                "An exit ends a path: add it at the end of one (remove the steps after "
                "this point first)."
            )
        step = JourneyStep.objects.create(
            version=draft,
            key=_new_key(draft),
            kind=kind,
            name=d.KINDS[kind] if kind != d.SEND else "Send email",
            config=_default_config(kind),
            next_key="" if kind == d.EXIT else continuation,
            no_key=continuation if kind == d.BRANCH else "",
        )
        if before is None:
            draft.entry_key = step.key
            draft.save(update_fields=["entry_key"])
        else:
            setattr(before, attribute, step.key)
            before.save(update_fields=[attribute])
        audit.record(
            "journey.edit",
            actor=actor,
            request=request,
            target=journey,
            details={"version": draft.number, "added": step.key, "kind": kind},
        )
    return step


def step_update(
    *,
    journey: Journey,
    key: str,
    actor: Any,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    next_key: str | None = None,
    no_key: str | None = None,
    allow_phi: bool | None = None,
    request: HttpRequest | None = None,
) -> JourneyStep:
    """Change a draft step's name, configuration or where it continues (any step of
    the version: loops are allowed when they pass a wait). Raises
    :class:`DefinitionError`. Audits ``journey.edit`` (step key, not values)."""
    with transaction.atomic():
        journey = _lock(journey)
        draft = _draft_for_edit(journey, actor, request)
        step = draft.steps.filter(key=key).first()
        if step is None:
            raise JourneyError("That step no longer exists; reload the page.")
        before = definition_of(draft)
        if name is not None:
            step.name = " ".join(name.split())[:120]
        if config is not None:
            step.config = d.clean_step_config(step.kind, config, step=key)
        keys = set(draft.steps.values_list("key", flat=True))
        for attribute, value in (("next_key", next_key), ("no_key", no_key)):
            if value is None or step.kind == d.EXIT:
                continue
            if attribute == "no_key" and step.kind != d.BRANCH:
                continue
            if value and value not in keys:
                raise DefinitionError([Problem(key, f"There is no step '{value[:32]}'.")])
            if value == key:
                raise DefinitionError([Problem(key, "A step cannot continue with itself.")])
            setattr(step, attribute, value)
        step.save()
        _check_phi(actor, allow_phi, before, definition_of(draft))
        audit.record(
            "journey.edit",
            actor=actor,
            request=request,
            target=journey,
            details={"version": draft.number, "changed_step": key},
        )
    return step


def step_remove(
    *,
    journey: Journey,
    key: str,
    actor: Any,
    allow_phi: bool | None = None,
    request: HttpRequest | None = None,
) -> int:
    """Remove a draft step; whatever led to it continues with what followed it. A
    branch keeps its yes path: steps only its no path led to are removed with it.
    Returns how many steps were removed. Audits ``journey.edit``."""
    with transaction.atomic():
        journey = _lock(journey)
        draft = _draft_for_edit(journey, actor, request)
        _check_phi(actor, allow_phi, definition_of(draft))
        steps = {s.key: s for s in draft.steps.all()}
        step = steps.get(key)
        if step is None:
            raise JourneyError("That step no longer exists; reload the page.")
        continuation = step.next_key
        for other in steps.values():
            changed = []
            for attribute in ("next_key", "no_key"):
                if getattr(other, attribute) == key:
                    setattr(other, attribute, continuation)
                    changed.append(attribute)
            if changed:
                other.save(update_fields=changed)
        if draft.entry_key == key:
            draft.entry_key = continuation
            draft.save(update_fields=["entry_key"])
        removed = {key}
        if step.kind == d.BRANCH and step.no_key:
            del steps[key]
            alive = _reachable_keys(draft.entry_key, steps)
            only_no = _reachable_keys(step.no_key, steps) - alive
            removed |= only_no
        draft.steps.filter(key__in=removed).delete()
        audit.record(
            "journey.edit",
            actor=actor,
            request=request,
            target=journey,
            details={"version": draft.number, "removed": sorted(removed)},
        )
    return len(removed)


def _reachable_keys(start: str, steps: Mapping[str, JourneyStep]) -> set[str]:
    seen: set[str] = set()
    queue = deque([start])
    while queue:
        key = queue.popleft()
        if not key or key in seen or key not in steps:
            continue
        seen.add(key)
        queue.extend([steps[key].next_key, steps[key].no_key])
    return seen


def journey_discard_draft(
    *, journey: Journey, actor: Any, request: HttpRequest | None = None
) -> None:
    """Drop the draft of a journey that has a published version. Audits
    ``journey.discard_draft``."""
    with transaction.atomic():
        journey = _lock(journey)
        draft = draft_version(journey)
        if draft is None:
            return
        if journey.current_version_id is None:
            raise TransitionError("This journey has no published version to go back to.")
        number = draft.number
        draft.delete()
        audit.record(
            "journey.discard_draft",
            actor=actor,
            request=request,
            target=journey,
            details={"version": number},
        )


# --- publishing and status ------------------------------------------------------------------


def step_campaign_create(
    *, step: JourneyStep, round: int, template_from: Any = None
) -> JourneyStepCampaign:
    """The hidden campaign of a send step (round 1 at publishing; later rounds copy the
    first round's frozen content). It is ``sending`` from the start: the engine adds
    messages and the send pipeline delivers them like any campaign's."""
    from campaigns import services as campaign_services
    from campaigns.models import Campaign, CampaignStatus, EmailTemplate, SenderIdentity
    from luxmail import org

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


def _publish(journey: Journey, actor: Any) -> JourneyVersion:
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
    *, journey: Journey, actor: Any, request: HttpRequest | None = None
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
    *, journey: Journey, actor: Any, request: HttpRequest | None = None
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
    from campaigns.models import Campaign

    return Campaign.objects.filter(journey_step__step__version__journey=journey)


def journey_pause(*, journey: Journey, actor: Any, request: HttpRequest | None = None) -> Journey:
    """active → paused: no enrollment moves and the journey's queued messages wait
    (its step campaigns pause). Triggers still enroll, held until resumed. Audits
    ``journey.pause``."""
    from campaigns.models import CampaignStatus

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


def journey_resume(*, journey: Journey, actor: Any, request: HttpRequest | None = None) -> Journey:
    """paused → active: held enrollments continue (overdue waits end at once) and the
    step campaigns send again. Audits ``journey.resume``."""
    from campaigns import services as campaign_services
    from campaigns.models import CampaignStatus

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


def journey_archive(*, journey: Journey, actor: Any, request: HttpRequest | None = None) -> Journey:
    """Stop a journey for good: active enrollments are removed and its step campaigns'
    unsent messages cancelled. Audits ``journey.archive``."""
    from campaigns import services as campaign_services
    from campaigns.models import CampaignStatus

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
    from campaigns.journeys import tasks

    tasks.advance.delay()


def _enqueue_triggers() -> None:
    from campaigns.journeys import tasks

    tasks.evaluate_triggers.delay()


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
    actor: Any,
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
    *, enrollment: JourneyEnrollment, actor: Any, request: HttpRequest | None = None
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
    actor: Any,
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
