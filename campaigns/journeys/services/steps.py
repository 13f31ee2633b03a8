"""Step edits on a draft: add, update, remove; discarding a draft."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from campaigns.journeys import definition as d
from campaigns.journeys.definition import DefinitionError, JourneyError, Problem
from campaigns.journeys.services.definitions import (
    _check_phi,
    _draft_for_edit,
    definition_of,
    draft_version,
)
from campaigns.journeys.services.errors import TransitionError, _lock
from campaigns.models import (
    Journey,
    JourneyStep,
    JourneyVersion,
)
from luxmail import audit
from luxmail.actors import Actor

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
    actor: Actor,
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
    actor: Actor,
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
    actor: Actor,
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
    *, journey: Journey, actor: Actor, request: HttpRequest | None = None
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
