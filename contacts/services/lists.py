"""Contact list writes and list membership."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.http import HttpRequest

from contacts import segments
from contacts.models import (
    Contact,
    ContactList,
    ListMembership,
    Segment,
)
from contacts.services.errors import ListError
from luxmail import audit
from luxmail.actors import Actor, user_of

# --- lists ------------------------------------------------------------------------------------


def contact_list_create(
    *, name: str, actor: Actor, description: str = "", request: HttpRequest | None = None
) -> ContactList:
    """Create a static list. Audits ``list.create``. Raises :class:`ListError`."""
    name = " ".join(name.split())
    if not name:
        raise ListError("Give the list a name.")
    with transaction.atomic():
        if ContactList.objects.filter(name__iexact=name).exists():
            raise ListError("A list with this name already exists.")
        contact_list = ContactList.objects.create(
            name=name,
            description=description.strip(),
            created_by=user_of(actor),
        )
        audit.record("list.create", actor=actor, request=request, target=contact_list)
    return contact_list


def contact_list_update(
    *,
    contact_list: ContactList,
    actor: Actor,
    name: str | None = None,
    description: str | None = None,
    request: HttpRequest | None = None,
) -> ContactList:
    """Rename or re-describe a list. Audits ``list.update``."""
    with transaction.atomic():
        if name is not None:
            name = " ".join(name.split())
            if not name:
                raise ListError("Give the list a name.")
            if ContactList.objects.filter(name__iexact=name).exclude(pk=contact_list.pk).exists():
                raise ListError("A list with this name already exists.")
            contact_list.name = name
        if description is not None:
            contact_list.description = description.strip()
        contact_list.save()
        audit.record("list.update", actor=actor, request=request, target=contact_list)
    return contact_list


def contact_list_delete(
    *, contact_list: ContactList, actor: Actor, request: HttpRequest | None = None
) -> None:
    """Delete a list and its memberships (contacts stay). Refused while a segment uses it."""
    with transaction.atomic():
        users = [
            s.name for s in Segment.objects.all() if contact_list.pk in segments.list_ids(s.rules)
        ]
        if users:
            raise ListError(f"Segment '{users[0]}' uses this list; change the segment first.")
        members = contact_list.memberships.count()
        audit.record(
            "list.delete",
            actor=actor,
            request=request,
            target=contact_list,
            details={"members": members},
        )
        contact_list.delete()


def list_members_add(
    *,
    contact_list: ContactList,
    contact_ids: Iterable[int],
    actor: Actor,
    request: HttpRequest | None = None,
) -> int:
    """Add contacts to a list (idempotent); returns how many were new. Audited."""
    ids = sorted(set(contact_ids))
    with transaction.atomic():
        known = set(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = len(ids) - len(known)
        if missing:
            raise ListError(f"{missing} of the given contacts do not exist.")
        present = set(
            ListMembership.objects.filter(
                contact_list=contact_list, contact_id__in=ids
            ).values_list("contact_id", flat=True)
        )
        added = ListMembership.objects.bulk_create(
            [
                ListMembership(
                    contact_list=contact_list,
                    contact_id=pk,
                    added_by=user_of(actor),
                )
                for pk in ids
                if pk not in present
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        audit.record(
            "list.add_members",
            actor=actor,
            request=request,
            target=contact_list,
            details={"added": len(added)},
        )
    return len(added)


def list_members_remove(
    *,
    contact_list: ContactList,
    contact_ids: Iterable[int],
    actor: Actor,
    request: HttpRequest | None = None,
) -> int:
    """Remove contacts from a list; returns how many were members. Audited."""
    with transaction.atomic():
        removed, _ = ListMembership.objects.filter(
            contact_list=contact_list, contact_id__in=list(contact_ids)
        ).delete()
        audit.record(
            "list.remove_members",
            actor=actor,
            request=request,
            target=contact_list,
            details={"removed": removed},
        )
    return removed
