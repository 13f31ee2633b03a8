"""Reads behind the contacts pages that ``contacts/selectors.py`` does not need to share.

PHI is only ever read through ``contacts.selectors`` (``contacts_phi`` /
``contacts_masked``), which audit; this module returns rows, counts and plain columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, QuerySet
from django.http import HttpRequest

from contacts import segments, selectors
from contacts.attributes import PROFILE_ATTRIBUTES
from contacts.models import (
    Contact,
    ContactList,
    ContactProfile,
    CustomField,
    Segment,
    Suppression,
)
from luxmail import audit
from luxmail.actors import Actor


def contacts_filtered(
    *, status: str = "", contact_list: ContactList | None = None
) -> QuerySet[Contact]:
    """Contacts newest first, filtered by plain columns only (never by PHI)."""
    found = Contact.objects.all()
    if status:
        found = found.filter(status=status)
    if contact_list is not None:
        found = found.filter(memberships__contact_list=contact_list)
    return found.order_by("-id")


def contact_find_by_email(
    *, email: str, actor: Actor, request: HttpRequest | None
) -> Contact | None:
    """Exact look-up through the blind index; audited as ``contact.search`` (found or not).

    Whether an address belongs to a patient is itself sensitive, so every look-up is
    on record — without the address.
    """
    contact = selectors.contact_by_email(email=email)
    audit.record(
        "contact.search",
        actor=actor,
        request=request,
        target=contact,
        details={"found": contact is not None},
    )
    return contact


@dataclass(frozen=True)
class ProfileLine:
    key: str
    label: str
    is_set: bool | None
    phi: bool
    value: Any = None


def profile_outline(*, contact: Contact) -> list[ProfileLine]:
    """Which profile attributes are set (no decryption: an envelope is there or not).

    Non-PHI custom values are plain and shown as they are; PHI ones only as "set".
    """
    try:
        profile = contact.profile
    except ContactProfile.DoesNotExist:
        profile = None
    lines = [
        ProfileLine(name, attribute.label, bool(profile and getattr(profile, name)), True)
        for name, attribute in PROFILE_ATTRIBUTES.items()
    ]
    plain = dict(profile.custom or {}) if profile else {}
    phi_set = bool(profile and profile.custom_phi)
    for custom in CustomField.objects.order_by("key"):
        if custom.phi:
            # Which PHI custom fields are set is inside one envelope: not known unread.
            lines.append(
                ProfileLine(f"custom.{custom.key}", custom.label, None if phi_set else False, True)
            )
        else:
            value = plain.get(custom.key)
            lines.append(
                ProfileLine(f"custom.{custom.key}", custom.label, value is not None, False, value)
            )
    return lines


def suppression_history(*, contact: Contact) -> QuerySet[Suppression]:
    return (
        Suppression.objects.filter(email_bidx=contact.email_bidx)
        .select_related("created_by", "removed_by")
        .order_by("-created_at", "-id")
    )


def lists_with_counts() -> QuerySet[ContactList]:
    return ContactList.objects.annotate(members=Count("memberships")).order_by("name")


def segments_all() -> QuerySet[Segment]:
    return Segment.objects.select_related("created_by").order_by("name")


def uses_phi(rules: Any) -> bool:
    """Whether a rule tree selects by a PHI attribute (unknown fields count as PHI)."""
    for name in segments.fields_used(rules):
        kind = segments.kind_for(name)
        if kind is None or kind.phi:
            return True
    return False


def builder_fields(*, phi: bool) -> list[dict[str, Any]]:
    """The condition fields the builder offers: PHI ones only to PHI roles."""
    return [k.describe() for k in segments.available_kinds() if phi or not k.phi]
