"""Segment writes and audited counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts import segments
from contacts.models import (
    Segment,
)
from contacts.services.errors import ContactsError
from luxmail import audit
from luxmail.actors import Actor, user_of

# --- segments ---------------------------------------------------------------------------------


def segment_create(
    *,
    name: str,
    rules: Any,
    actor: Actor,
    description: str = "",
    request: HttpRequest | None = None,
) -> Segment:
    """Validate ``rules`` and store a segment. Audits ``segment.create``.

    Raises :class:`contacts.segments.SegmentRuleError` (every problem with its path)
    or :class:`ContactsError` for a missing or duplicate name.
    """
    name = " ".join(name.split())
    if not name:
        raise ContactsError("Give the segment a name.")
    cleaned = segments.validate(rules)
    with transaction.atomic():
        if Segment.objects.filter(name__iexact=name).exists():
            raise ContactsError("A segment with this name already exists.")
        segment = Segment.objects.create(
            name=name,
            description=description.strip(),
            rules=cleaned,
            created_by=user_of(actor),
        )
        audit.record("segment.create", actor=actor, request=request, target=segment)
    return segment


def segment_update(
    *,
    segment: Segment,
    actor: Actor,
    name: str | None = None,
    rules: Any = None,
    description: str | None = None,
    request: HttpRequest | None = None,
) -> Segment:
    """Change a segment's name, description or rules (validated). Audits ``segment.update``."""
    with transaction.atomic():
        if name is not None:
            name = " ".join(name.split())
            if not name:
                raise ContactsError("Give the segment a name.")
            if Segment.objects.filter(name__iexact=name).exclude(pk=segment.pk).exists():
                raise ContactsError("A segment with this name already exists.")
            segment.name = name
        if rules is not None:
            segment.rules = segments.validate(rules)
            segment.last_count = None
            segment.last_counted_at = None
        if description is not None:
            segment.description = description.strip()
        segment.save()
        audit.record(
            "segment.update",
            actor=actor,
            request=request,
            target=segment,
            details={"rules_changed": rules is not None},
        )
    return segment


def segment_delete(*, segment: Segment, actor: Actor, request: HttpRequest | None = None) -> None:
    """Delete a segment definition (contacts are untouched). Audits ``segment.delete``."""
    with transaction.atomic():
        audit.record("segment.delete", actor=actor, request=request, target=segment)
        segment.delete()


def segment_count(
    *,
    segment: Segment,
    actor: Actor,
    request: HttpRequest | None = None,
    today: dt.date | None = None,
) -> int:
    """Count the contacts matching ``segment`` now; store it and audit ``segment.count``.

    The audit details hold the segment id and the count only.
    """
    count = segments.count(segment.rules, today=today)
    with transaction.atomic():
        Segment.objects.filter(pk=segment.pk).update(
            last_count=count, last_counted_at=timezone.now()
        )
        audit.record(
            "segment.count",
            actor=actor,
            request=request,
            target=segment,
            details={"segment": segment.pk, "count": count},
        )
    segment.last_count = count
    return count


def segment_count_rules(
    *,
    rules: Any,
    actor: Actor,
    request: HttpRequest | None = None,
    today: dt.date | None = None,
) -> int:
    """Count an unsaved rule tree (the live segment builder). Audits ``segment.count``.

    Raises :class:`contacts.segments.SegmentRuleError` for invalid rules.
    """
    cleaned = segments.validate(rules)
    count = segments.count(cleaned, today=today)
    audit.record(
        "segment.count",
        actor=actor,
        request=request,
        details={"segment": None, "count": count, "conditions": segments.condition_count(cleaned)},
    )
    return count
