"""Journey definitions: create, update, drafts, definition and settings edits."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from campaigns.journeys import definition as d
from campaigns.journeys.definition import JourneyError, Problem
from campaigns.journeys.services.errors import (
    PHI_REFUSED,
    PhiRefused,
    TransitionError,
    _lock,
    _may_use_phi,
    _user,
)
from campaigns.models import (
    Journey,
    JourneyStatus,
    JourneyStep,
    JourneyVersion,
)
from luxmail import audit
from luxmail.actors import Actor

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


def _check_phi(actor: Actor, allow_phi: bool | None, *definitions: Mapping[str, Any]) -> None:
    if _may_use_phi(actor, allow_phi):
        return
    if any(d.uses_phi(item) for item in definitions):
        raise PhiRefused(PHI_REFUSED)


def journey_create(
    *,
    name: str,
    actor: Actor,
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
    actor: Actor,
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


def _draft_for_edit(journey: Journey, actor: Actor, request: HttpRequest | None) -> JourneyVersion:
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
    actor: Actor,
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
    actor: Actor,
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
