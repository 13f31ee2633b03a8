"""Reads of the contacts app: send audiences, PHI reveal (audited), masking, look-ups.

PHI leaves the database only through :func:`contact_phi` / :func:`contacts_phi` (which
write ``contact.view_phi`` and ``phi.access`` events) or :func:`contacts_masked`
(decrypts to mask, audited as a ``phi.access`` with a masking purpose).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from contacts import segments, upsert
from contacts.attributes import PROFILE_ATTRIBUTES, ContactValueError, normalize_email
from contacts.models import (
    Consent,
    ConsentPurpose,
    Contact,
    ContactList,
    ContactProfile,
    ContactStatus,
    CustomField,
    ListMembership,
    Segment,
    Suppression,
)
from luxmail import audit, crypto
from luxmail.actors import Actor

IDENTITY_PHI = ("email", "first_name", "last_name", "phone")
PROFILE_PHI = tuple(PROFILE_ATTRIBUTES)


# --- audiences --------------------------------------------------------------------------------


def consent_purpose_for(*, phi_template: bool) -> str:
    """The consent a send needs: the HIPAA marketing authorization when PHI is used."""
    return ConsentPurpose.PHI_MARKETING if phi_template else ConsentPurpose.MARKETING


def suppressed_q() -> Q:
    """Contacts whose address has an active suppression."""
    return Q(
        Exists(
            Suppression.objects.filter(email_bidx=OuterRef("email_bidx"), removed_at__isnull=True)
        )
    )


def _ids(items: Iterable[Any]) -> list[int]:
    return [item if isinstance(item, int) else item.pk for item in items]


def _segments_q(ids: Sequence[int], ctx: segments.Context) -> Q | None:
    q: Q | None = None
    for rules in Segment.objects.filter(pk__in=ids).values_list("rules", flat=True):
        part = segments.compile_rules(rules, ctx)
        q = part if q is None else q | part
    return q


def _lists_q(ids: Sequence[int]) -> Q | None:
    if not ids:
        return None
    return Q(pk__in=ListMembership.objects.filter(contact_list_id__in=ids).values("contact_id"))


def send_audience(
    *,
    purpose: str,
    segments_in: Iterable[Segment | int] = (),
    lists_in: Iterable[ContactList | int] = (),
    exclude_segments: Iterable[Segment | int] = (),
    exclude_lists: Iterable[ContactList | int] = (),
    today: dt.date | None = None,
) -> QuerySet[Contact]:
    """The contacts a send may reach, as one lazily evaluated query.

    (segments OR lists) minus exclusions, suppressed addresses, contacts whose status
    is not active and contacts without a present consent for ``purpose``. Embed it in
    ``INSERT … SELECT`` with ``.values("pk")``.
    ``purpose`` comes from :func:`consent_purpose_for`. With no segment and no list it
    is empty.
    Raises :class:`contacts.segments.SegmentRuleError` if a stored segment no longer
    validates (e.g. it uses a deleted list).
    """
    if purpose not in ConsentPurpose.values:
        raise ValueError(f"Unknown consent purpose; use one of {', '.join(ConsentPurpose.values)}.")
    ctx = segments.context(today)
    include: list[Q] = [
        q for q in (_segments_q(_ids(segments_in), ctx), _lists_q(_ids(lists_in))) if q is not None
    ]
    if not include:
        return Contact.objects.none()
    q = include[0]
    for part in include[1:]:
        q |= part
    audience = Contact.objects.filter(q, status=ContactStatus.ACTIVE)
    for excluded in (_segments_q(_ids(exclude_segments), ctx), _lists_q(_ids(exclude_lists))):
        if excluded is not None:
            audience = audience.exclude(excluded)
    return (
        audience.filter(segments.consent_present_q(purpose, ctx.now))
        .exclude(suppressed_q())
        .order_by()
    )


def consent_present(*, contact: Contact, purpose: str, at: dt.datetime | None = None) -> bool:
    return (
        Contact.objects.filter(pk=contact.pk)
        .filter(segments.consent_present_q(purpose, at or timezone.now()))
        .exists()
    )


def contact_consents(*, contact: Contact) -> QuerySet[Consent]:
    """The full consent history of a contact, newest first (revoked rows included)."""
    return Consent.objects.filter(contact=contact).order_by("-granted_at", "-id")


def consent_is_present(consent: Consent, *, at: dt.datetime | None = None) -> bool:
    at = at or timezone.now()
    return (
        consent.revoked_at is None
        and consent.granted_at <= at
        and (consent.expires_at is None or consent.expires_at > at)
    )


def is_suppressed(*, contact: Contact) -> bool:
    return Suppression.objects.filter(email_bidx=contact.email_bidx, removed_at=None).exists()


def suppression_for_email(*, email: str) -> Suppression | None:
    """The active suppression of an address, or None (invalid addresses give None)."""
    try:
        address, _ = normalize_email(email)
    except ContactValueError:
        return None
    return Suppression.objects.filter(
        email_bidx=upsert.email_bidx(address), removed_at=None
    ).first()


def contact_by_email(*, email: str) -> Contact | None:
    """Exact look-up through the blind index (the only way to search by address)."""
    try:
        address, _ = normalize_email(email)
    except ContactValueError:
        return None
    return Contact.objects.filter(email_bidx=upsert.email_bidx(address)).first()


def contacts_in_list(*, contact_list: ContactList) -> QuerySet[Contact]:
    return Contact.objects.filter(memberships__contact_list=contact_list)


# --- PHI reveal and masking -------------------------------------------------------------------


def _custom_values(profile: ContactProfile, access: crypto.Access) -> dict[str, Any]:
    keys = set(CustomField.objects.values_list("key", flat=True))
    merged = {
        **(profile.custom or {}),
        **(crypto.reveal(profile, "custom_phi", access=access) or {}),
    }
    return {k: v for k, v in sorted(merged.items()) if k in keys}


def _reveal(
    contact: Contact, profile: ContactProfile | None, access: crypto.Access
) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: crypto.reveal(contact, name, access=access) for name in IDENTITY_PHI
    }
    profile = profile or ContactProfile(contact=contact, uuid=contact.uuid)
    for name in PROFILE_PHI:
        values[name] = crypto.reveal(profile, name, access=access)
    values["custom"] = _custom_values(profile, access)
    return values


def contacts_phi(
    *,
    contacts: Sequence[Contact],
    actor: Actor,
    request: HttpRequest | None = None,
    purpose: str = "contact.view_phi",
    access: crypto.Access | None = None,
) -> dict[int, dict[str, Any]]:
    """Decrypted identity and profile of ``contacts`` (keyed by id), for display.

    Callers check the permission (``luxmail.view_phi`` / scope ``phi:read``) first.
    Writes one ``phi.access`` and one ``contact.view_phi`` event for the whole call
    (a page, an API response), with the contact ids — never values — in the details.
    An export reading in chunks passes the ``access`` it obtained once for the whole
    export (and audits the export itself); then nothing more is recorded here.
    """
    if not contacts:
        return {}
    ids = [c.pk for c in contacts]
    # Profiles are read fresh (one query), never from a possibly stale cached relation.
    profiles = ContactProfile.objects.in_bulk(ids)
    if access is not None:
        return {c.pk: _reveal(c, profiles.get(c.pk), access) for c in contacts}
    single = contacts[0] if len(contacts) == 1 else None
    access = crypto.phi_access(
        actor=actor, purpose=purpose, target=single, request=request, details={"contacts": len(ids)}
    )
    audit.record(
        "contact.view_phi",
        actor=actor,
        target=single,
        request=request,
        phi=True,
        details={"contacts": ids[:100], "count": len(ids)},
    )
    return {c.pk: _reveal(c, profiles.get(c.pk), access) for c in contacts}


def contact_phi(
    *, contact: Contact, actor: Actor, request: HttpRequest | None = None
) -> dict[str, Any]:
    """One contact's decrypted identity and profile; audited like :func:`contacts_phi`."""
    return contacts_phi(contacts=[contact], actor=actor, request=request)[contact.pk]


def plain_custom_values(*, contacts: Sequence[Contact]) -> dict[int, dict[str, Any]]:
    """Values of custom fields not marked PHI (stored in plaintext; no decryption)."""
    keys = set(CustomField.objects.filter(phi=False).values_list("key", flat=True))
    rows = ContactProfile.objects.filter(contact_id__in=[c.pk for c in contacts]).values_list(
        "contact_id", "custom"
    )
    return {pk: {k: v for k, v in (custom or {}).items() if k in keys} for pk, custom in rows}


def mask_email(address: str | None) -> str:
    """``alice@example.org`` → ``a***@example.org`` (the domain is not PHI here)."""
    if not address:
        return ""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_name(name: str | None) -> str:
    """``John`` → ``J***``."""
    return f"{name[:1]}***" if name else ""


def mask_phone(phone: str | None) -> str:
    return "***" if phone else ""


@dataclass(frozen=True)
class MaskedIdentity:
    email: str
    first_name: str
    last_name: str
    phone: str

    def as_dict(self) -> dict[str, str]:
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
        }


def contacts_masked(
    *,
    contacts: Sequence[Contact],
    actor: Actor,
    request: HttpRequest | None = None,
    access: crypto.Access | None = None,
) -> dict[int, MaskedIdentity]:
    """Masked identities for users without PHI rights (one audited decryption per call).

    A chunked export passes the ``access`` it obtained once for the whole export.
    """
    if not contacts:
        return {}
    if access is None:
        access = crypto.phi_access(
            actor=actor,
            purpose="contact.masked_display",
            request=request,
            details={"contacts": len(contacts)},
        )
    masked: dict[int, MaskedIdentity] = {}
    for contact in contacts:
        masked[contact.pk] = MaskedIdentity(
            email=mask_email(crypto.reveal(contact, "email", access=access)),
            first_name=mask_name(crypto.reveal(contact, "first_name", access=access)),
            last_name=mask_name(crypto.reveal(contact, "last_name", access=access)),
            phone=mask_phone(crypto.reveal(contact, "phone", access=access)),
        )
    return masked


def segment_sample(
    *,
    rules: Any,
    actor: Actor,
    size: int = 10,
    request: HttpRequest | None = None,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:
    """Up to ``size`` matching contacts (newest first), masked, for the segment builder."""
    sample = list(segments.matching(rules, today=today).order_by("-id")[: max(1, min(size, 50))])
    masked = contacts_masked(contacts=sample, actor=actor, request=request)
    return [{"id": c.pk, "status": c.status, **masked[c.pk].as_dict()} for c in sample]


def contact_lists(*, contact: Contact) -> QuerySet[ContactList]:
    return ContactList.objects.filter(memberships__contact=contact).order_by("name")


def list_member_counts(*, lists: Iterable[ContactList]) -> Mapping[int, int]:

    ids = [item.pk for item in lists]
    rows = (
        ListMembership.objects.filter(contact_list_id__in=ids)
        .values("contact_list_id")
        .annotate(n=Count("id"))
    )
    return {row["contact_list_id"]: row["n"] for row in rows}
