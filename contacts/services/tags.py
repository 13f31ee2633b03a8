"""Tags: create, delete, attach to and detach from contacts (issue 20).

A tag is a staff label, not PHI (docs/security.md): its name shows in lists, filters
and the API. Every write audits ids and counts only.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from contacts.models import Contact, ContactTag, Tag
from contacts.services.errors import ContactsError
from luxmail import audit
from luxmail.actors import Actor, user_of

MAX_TAG_NAME = 60


class TagError(ContactsError):
    pass


def _clean_name(name: str) -> str:
    cleaned = " ".join(str(name).split())
    if not cleaned:
        raise TagError("Tag: give a name.")
    if len(cleaned) > MAX_TAG_NAME:
        raise TagError(f"Tag: at most {MAX_TAG_NAME} characters.")
    return cleaned


def tag_create(*, name: str, actor: Actor, request: HttpRequest | None = None) -> Tag:
    """Create a tag. Raises :class:`TagError` for a blank, long or taken name. Audited."""
    cleaned = _clean_name(name)
    if Tag.objects.filter(name__iexact=cleaned).exists():
        raise TagError("Tag: a tag with this name exists.")
    try:
        with transaction.atomic():
            tag = Tag.objects.create(name=cleaned, created_by=user_of(actor))
            audit.record("tag.create", actor=actor, request=request, target=tag)
    except IntegrityError:
        raise TagError("Tag: a tag with this name exists.") from None
    return tag


def tag_get_or_create(*, name: str, actor: Actor, request: HttpRequest | None = None) -> Tag:
    """The tag called ``name`` (case-insensitive), created if missing."""
    cleaned = _clean_name(name)
    found = Tag.objects.filter(name__iexact=cleaned).first()
    return found or tag_create(name=cleaned, actor=actor, request=request)


def tag_delete(*, tag: Tag, actor: Actor, request: HttpRequest | None = None) -> None:
    """Delete a tag and detach it from every contact. Audited with the count."""
    with transaction.atomic():
        count = ContactTag.objects.filter(tag=tag).count()
        audit.record(
            "tag.delete", actor=actor, request=request, target=tag, details={"detached": count}
        )
        tag.delete()


def contacts_tag(
    *, tag: Tag, contact_ids: Iterable[int], actor: Actor, request: HttpRequest | None = None
) -> int:
    """Attach ``tag`` to contacts (idempotent; unknown ids ignored). Returns how many new."""
    ids = sorted({int(pk) for pk in contact_ids})
    with transaction.atomic():
        known = set(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True))
        present = set(
            ContactTag.objects.filter(tag=tag, contact_id__in=known).values_list(
                "contact_id", flat=True
            )
        )
        added = ContactTag.objects.bulk_create(
            [
                ContactTag(tag=tag, contact_id=pk, added_by=user_of(actor))
                for pk in sorted(known - present)
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        audit.record(
            "tag.attach", actor=actor, request=request, target=tag, details={"added": len(added)}
        )
    return len(added)


def contacts_untag(
    *, tag: Tag, contact_ids: Iterable[int], actor: Actor, request: HttpRequest | None = None
) -> int:
    """Detach ``tag`` from contacts (idempotent). Returns how many were removed."""
    ids = sorted({int(pk) for pk in contact_ids})
    with transaction.atomic():
        removed, _ = ContactTag.objects.filter(tag=tag, contact_id__in=ids).delete()
        audit.record(
            "tag.detach", actor=actor, request=request, target=tag, details={"removed": removed}
        )
    return removed
