"""Custom field definitions: create, update, delete."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import transaction
from django.http import HttpRequest

from contacts import segments
from contacts.models import (
    CustomField,
    CustomFieldKind,
    Segment,
)
from contacts.services.errors import CustomFieldError
from luxmail import audit
from luxmail.actors import Actor, user_of

# --- custom fields ----------------------------------------------------------------------------


def custom_field_create(
    *,
    key: str,
    label: str,
    kind: str,
    actor: Actor,
    phi: bool = True,
    choices: Sequence[str] = (),
    help_text: str = "",
    request: HttpRequest | None = None,
) -> CustomField:
    """Define a custom contact field. Audits ``custom_field.create``.

    ``key`` is a slug used in imports and segments (``custom.<key>``). Raises
    :class:`CustomFieldError` for a bad key, kind, label or choices.
    """

    key = key.strip().lower()
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,49}", key):
        raise CustomFieldError(
            "Key: start with a letter; use lowercase letters, digits and _ (at most 50)."
        )
    if kind not in CustomFieldKind.values:
        raise CustomFieldError(f"Kind: use one of {', '.join(CustomFieldKind.values)}.")
    label = " ".join(label.split())
    if not label:
        raise CustomFieldError("Give the field a label.")
    clean_choices = _clean_choices(kind, choices)
    with transaction.atomic():
        if CustomField.objects.filter(key=key).exists():
            raise CustomFieldError("A custom field with this key already exists.")
        custom_field = CustomField.objects.create(
            key=key,
            label=label[:100],
            kind=kind,
            phi=phi,
            choices=clean_choices,
            help_text=help_text.strip()[:200],
            created_by=user_of(actor),
        )
        audit.record(
            "custom_field.create",
            actor=actor,
            request=request,
            target=custom_field,
            details={"key": key, "kind": kind, "phi": phi},
        )
    return custom_field


def _clean_choices(kind: str, choices: Sequence[str]) -> list[str]:
    if kind != CustomFieldKind.CHOICE:
        if choices:
            raise CustomFieldError("Only choice fields have choices.")
        return []
    cleaned: list[str] = []
    for choice in choices:
        text = " ".join(str(choice).split())
        if text and text.lower() not in {c.lower() for c in cleaned}:
            cleaned.append(text[:100])
    if not cleaned:
        raise CustomFieldError("A choice field needs at least one choice.")
    return cleaned


def custom_field_update(
    *,
    custom_field: CustomField,
    actor: Actor,
    label: str | None = None,
    choices: Sequence[str] | None = None,
    help_text: str | None = None,
    request: HttpRequest | None = None,
) -> CustomField:
    """Change a field's label, help or choices. Kind, key and PHI flag are fixed.

    Choices can be added, not removed (stored values must stay valid). Audited.
    """
    with transaction.atomic():
        if label is not None:
            label = " ".join(label.split())
            if not label:
                raise CustomFieldError("Give the field a label.")
            custom_field.label = label[:100]
        if choices is not None:
            cleaned = _clean_choices(custom_field.kind, choices)
            removed = {c.lower() for c in custom_field.choices} - {c.lower() for c in cleaned}
            if removed:
                raise CustomFieldError("Choices can be added but not removed.")
            custom_field.choices = cleaned
        if help_text is not None:
            custom_field.help_text = help_text.strip()[:200]
        custom_field.save()
        audit.record("custom_field.update", actor=actor, request=request, target=custom_field)
    return custom_field


def custom_field_delete(
    *, custom_field: CustomField, actor: Actor, request: HttpRequest | None = None
) -> None:
    """Delete a custom field definition. Refused while a segment uses it.

    Stored values become unreachable at once (their tokens were derived from this
    field's UUID) and are dropped from each profile at its next write. Audited.
    """
    with transaction.atomic():
        users = [
            s.name
            for s in Segment.objects.all()
            if f"custom.{custom_field.key}" in segments.fields_used(s.rules)
        ]
        if users:
            raise CustomFieldError(f"Segment '{users[0]}' uses this field; change it first.")
        audit.record(
            "custom_field.delete",
            actor=actor,
            request=request,
            target=custom_field,
            details={"key": custom_field.key},
        )
        custom_field.delete()
