"""Writes of the contacts app: contacts, consent, suppression, lists, segments, custom fields.

Every service owns its transaction, audits what it did (ids and counts only, never
PHI) and raises a :class:`ContactsError` subclass with a friendly message for
anything a user can cause. Contact writes go through ``contacts/upsert.py`` so that
encryption and tokens are produced the same way everywhere, and the tokens of a contact
are rewritten in the same transaction as its profile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts import segments, upsert
from contacts.attributes import ContactValueError
from contacts.models import (
    Consent,
    ConsentPurpose,
    ConsentSource,
    Contact,
    ContactList,
    ContactStatus,
    CustomField,
    CustomFieldKind,
    ListMembership,
    Segment,
    Suppression,
    SuppressionReason,
)
from contacts.upsert import RowError
from luxmail import audit, crypto


class ContactsError(Exception):
    """A user-caused problem; ``message`` is safe to show and to log (no PHI)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ContactInvalid(ContactsError):
    """Input rows failed validation; ``errors`` lists every problem by row and field."""

    def __init__(self, errors: Sequence[RowError]):
        self.errors = list(errors)
        first = self.errors[0].message if self.errors else "invalid input"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{first}{more}")


class ContactExists(ContactsError):
    pass


class ConsentError(ContactsError):
    pass


class SuppressionError(ContactsError):
    pass


class ListError(ContactsError):
    pass


class CustomFieldError(ContactsError):
    pass


MAX_BATCH = 5000


# --- contacts ---------------------------------------------------------------------------------


@dataclass
class BulkUpsertResult:
    """What a bulk upsert did (or, for a dry run, would do)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def _lookup_access(actor: Any, purpose: str, request: HttpRequest | None) -> crypto.Access:
    return crypto.phi_access(actor=actor, purpose=purpose, request=request)


def contacts_bulk_upsert(
    *,
    rows: Sequence[Mapping[str, Any]],
    actor: Any,
    request: HttpRequest | None = None,
    dry_run: bool = False,
    blank_clears: bool = False,
    source: str = "import",
    first_row_number: int = 1,
    access: crypto.Access | None = None,
    record_event: bool = True,
) -> BulkUpsertResult:
    """Create or update contacts by email, all rows or none.

    Each row is a mapping of field names (see ``contacts.upsert.ACCEPTED_KEYS``,
    ``custom`` / ``custom.<key>``) to raw values (strings from a CSV are fine). Every
    row is validated first; problems are returned as ``errors`` with 1-based row
    numbers (offset by ``first_row_number``) — duplicates inside ``rows`` included —
    and nothing is written when there is any error or when ``dry_run``. Otherwise the
    whole batch is written in one transaction; rows whose values equal the stored
    ones are left untouched (re-importing a file changes nothing). Blank values leave
    fields as they are unless ``blank_clears``.

    Audits ``contact.bulk_upsert`` (counts only) and one ``phi.access`` when existing
    contacts had to be decrypted for merging. Raises nothing for row errors; raises
    :class:`ContactsError` for a batch larger than :data:`MAX_BATCH`.

    An import that writes many batches in one outer transaction
    (``contacts/importing.py``) passes the ``access`` it obtained (and committed) up
    front and ``record_event=False``: its one ``contacts.import`` event, recorded at the
    end, stands for all batches, and the audit chain lock is not held for the whole run.
    """
    if len(rows) > MAX_BATCH:
        raise ContactsError(f"At most {MAX_BATCH} rows per batch; split the input.")
    result = BulkUpsertResult(dry_run=dry_run)
    defs = upsert.definitions()
    normalized: list[upsert.NormalizedRow] = []
    seen_email: dict[bytes, int] = {}
    seen_external: dict[str, int] = {}
    for index, data in enumerate(rows):
        number = first_row_number + index
        values, errors = upsert.normalize_row(
            data, row=number, defs=defs, require_email=True, blank_clears=blank_clears
        )
        result.errors.extend(errors)
        if values.email_bidx is not None:
            if values.email_bidx in seen_email:
                result.errors.append(
                    RowError(
                        number,
                        "email",
                        "Duplicate: the same email address is on row "
                        f"{seen_email[values.email_bidx]}.",
                    )
                )
            else:
                seen_email[values.email_bidx] = number
        external = values.identity.get("external_id")
        if external:
            if external in seen_external:
                result.errors.append(
                    RowError(
                        number,
                        "external_id",
                        f"Duplicate: the same external id is on row {seen_external[external]}.",
                    )
                )
            else:
                seen_external[external] = number
        normalized.append(values)
    if result.errors and not dry_run:
        return result

    valid = [v for v in normalized if v.email_bidx is not None]
    existing = {
        bytes(c.email_bidx): c
        for c in Contact.objects.select_related("profile").filter(
            email_bidx__in=[v.email_bidx for v in valid]
        )
    }
    # An external id may only move with its own contact.
    externals = {v.identity["external_id"]: v for v in valid if v.identity.get("external_id")}
    if externals:
        owners = Contact.objects.filter(external_id__in=list(externals)).values_list(
            "external_id", "email_bidx"
        )
        for external_id, owner_bidx in owners:
            values = externals[external_id]
            if bytes(owner_bidx) != values.email_bidx:
                result.errors.append(
                    RowError(
                        values.row,
                        "external_id",
                        "External id: already belongs to another contact.",
                    )
                )
    plans = [upsert.Plan(values=v, contact=existing.get(v.email_bidx or b"")) for v in valid]
    if dry_run:
        result.errors.sort(key=lambda e: e.row)
        result.created = sum(1 for p in plans if p.contact is None)
        result.updated = len(plans) - result.created
        return result
    if result.errors:
        result.errors.sort(key=lambda e: e.row)
        return result
    with transaction.atomic():
        if access is None and any(p.contact is not None for p in plans):
            access = _lookup_access(actor, "contact.upsert", request)
        written = upsert.write_plans(plans, defs=defs, access=access)
        result.created = len(written.created)
        result.updated = len(written.updated)
        result.unchanged = len(written.unchanged)
        by_bidx = {
            bytes(c.email_bidx): c.pk
            for c in [*written.created, *written.updated, *written.unchanged]
        }
        result.contact_ids = [by_bidx[bytes(p.values.email_bidx or b"")] for p in plans]
        if record_event:
            audit.record(
                "contact.bulk_upsert",
                actor=actor,
                request=request,
                details={
                    "source": source,
                    "rows": len(rows),
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                },
            )
    return result


def _raise_invalid(errors: list[RowError]) -> None:
    if errors:
        raise ContactInvalid(errors)


def contact_create(
    *,
    data: Mapping[str, Any],
    actor: Any,
    request: HttpRequest | None = None,
    source: str = "api",
) -> Contact:
    """Create one contact (email required). Audits ``contact.create``.

    Raises :class:`ContactInvalid` (every field error) or :class:`ContactExists`.
    """
    defs = upsert.definitions()
    values, errors = upsert.normalize_row(
        data, row=1, defs=defs, require_email=True, blank_clears=False
    )
    _raise_invalid(errors)
    with transaction.atomic():
        if Contact.objects.filter(email_bidx=values.email_bidx).exists():
            raise ContactExists("A contact with this email address already exists.")
        _check_external_id(values, None)
        written = upsert.write_plans([upsert.Plan(values=values)], defs=defs, access=None)
        contact = written.created[0]
        audit.record(
            "contact.create",
            actor=actor,
            request=request,
            target=contact,
            details={"source": source},
        )
    return contact


def _check_external_id(values: upsert.NormalizedRow, contact: Contact | None) -> None:
    external = values.identity.get("external_id")
    if not external:
        return
    owner = Contact.objects.filter(external_id=external)
    if contact is not None:
        owner = owner.exclude(pk=contact.pk)
    if owner.exists():
        raise ContactInvalid(
            [RowError(1, "external_id", "External id: already belongs to another contact.")]
        )


def contact_update(
    *,
    contact: Contact,
    data: Mapping[str, Any],
    actor: Any,
    request: HttpRequest | None = None,
) -> Contact:
    """Change the given fields of ``contact``; ``None`` or blank clears a field.

    Tokens are rewritten in the same transaction when the profile changes. Audits
    ``contact.update`` with the names (not values) of the changed fields and one
    ``phi.access`` (the current values are decrypted to merge). Raises
    :class:`ContactInvalid` or :class:`ContactExists` (email taken).
    """
    defs = upsert.definitions()
    values, errors = upsert.normalize_row(
        data, row=1, defs=defs, require_email=False, blank_clears=True
    )
    _raise_invalid(errors)
    if "email" in data and values.email is None:
        raise ContactInvalid([RowError(1, "email", "Email: an address is required.")])
    with transaction.atomic():
        locked = (
            Contact.objects.select_for_update(of=("self",))
            .select_related("profile")
            .get(pk=contact.pk)
        )
        if (
            values.email_bidx is not None
            and bytes(locked.email_bidx) != values.email_bidx
            and Contact.objects.filter(email_bidx=values.email_bidx).exists()
        ):
            raise ContactExists("Another contact already has this email address.")
        _check_external_id(values, locked)
        access = crypto.phi_access(
            actor=actor, purpose="contact.update", target=locked, request=request
        )
        written = upsert.write_plans(
            [upsert.Plan(values=values, contact=locked)], defs=defs, access=access
        )
        changed = sorted(
            {*values.identity, *values.profile, *(f"custom.{k}" for k in values.custom)}
            | ({"email"} if values.email else set())
        )
        if written.updated:
            audit.record(
                "contact.update",
                actor=actor,
                request=request,
                target=locked,
                details={"fields": changed},
            )
    return locked


def contact_upsert(
    *, data: Mapping[str, Any], actor: Any, request: HttpRequest | None = None, source: str = "api"
) -> tuple[Contact, bool]:
    """Create or update the contact with ``data['email']``; returns ``(contact, created)``.

    Blank values leave fields unchanged. Raises :class:`ContactInvalid`.
    """
    result = contacts_bulk_upsert(rows=[data], actor=actor, request=request, source=source)
    _raise_invalid(result.errors)
    return Contact.objects.get(pk=result.contact_ids[0]), result.created == 1


def contact_delete(*, contact: Contact, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete a contact with its profile, tokens, consents and list memberships.

    Suppressions are kept (they are keyed by address, not contact). Audits
    ``contact.delete`` with the contact's UUID and the number of consents removed.
    """
    with transaction.atomic():
        consents = Consent.objects.filter(contact=contact).count()
        audit.record(
            "contact.delete",
            actor=actor,
            request=request,
            target=contact,
            details={"consents_removed": consents},
        )
        contact.delete()


def contact_set_status(
    *,
    contact: Contact,
    status: str,
    actor: Any,
    request: HttpRequest | None = None,
    reason: str = "",
) -> bool:
    """Set a contact's delivery status; returns False if it already had it.

    Used by unsubscribe and bounce processing. Audits ``contact.status`` with the old
    and new status and a reason code.
    """
    if status not in ContactStatus.values:
        raise ContactsError(f"Unknown status; use one of {', '.join(ContactStatus.values)}.")
    with transaction.atomic():
        updated = Contact.objects.filter(pk=contact.pk).exclude(status=status)
        old = contact.status
        if not updated.update(status=status, status_changed_at=timezone.now()):
            return False
        contact.status = status
        audit.record(
            "contact.status",
            actor=actor,
            request=request,
            target=contact,
            details={"from": old, "to": status, "reason": reason[:64]},
        )
    return True


# --- consent ----------------------------------------------------------------------------------


def consent_grant(
    *,
    contact: Contact,
    purpose: str,
    source: str,
    actor: Any,
    evidence_ref: str = "",
    granted_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    request: HttpRequest | None = None,
) -> Consent:
    """Record a new grant of consent (a new row; history is never overwritten).

    Audits ``consent.grant``. Raises :class:`ConsentError` for an unknown purpose or
    source, or an expiry not after the grant.
    """
    consents = consent_grant_many(
        contact_ids=[contact.pk],
        purpose=purpose,
        source=source,
        actor=actor,
        evidence_ref=evidence_ref,
        granted_at=granted_at,
        expires_at=expires_at,
        request=request,
    )
    return consents[0]


def consent_grant_many(
    *,
    contact_ids: Sequence[int],
    purpose: str,
    source: str,
    actor: Any,
    evidence_ref: str = "",
    granted_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    request: HttpRequest | None = None,
) -> list[Consent]:
    """Grant the same consent to many contacts (imports); one ``consent.grant`` event."""
    if purpose not in ConsentPurpose.values:
        raise ConsentError(f"Unknown purpose; use one of {', '.join(ConsentPurpose.values)}.")
    if source not in ConsentSource.values:
        raise ConsentError(f"Unknown source; use one of {', '.join(ConsentSource.values)}.")
    if len(evidence_ref) > 200:
        raise ConsentError("Evidence reference: at most 200 characters.")
    granted_at = granted_at or timezone.now()
    if granted_at > timezone.now() + dt.timedelta(minutes=5):
        raise ConsentError("A consent cannot be granted in the future.")
    if expires_at is not None and expires_at <= granted_at:
        raise ConsentError("The expiry must be after the time consent was granted.")
    recorder = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        consents = Consent.objects.bulk_create(
            [
                Consent(
                    contact_id=pk,
                    purpose=purpose,
                    source=source,
                    evidence_ref=evidence_ref.strip(),
                    granted_at=granted_at,
                    expires_at=expires_at,
                    recorded_by=recorder,
                )
                for pk in contact_ids
            ],
            batch_size=2000,
        )
        audit.record(
            "consent.grant",
            actor=actor,
            request=request,
            target=consents[0].contact if len(consents) == 1 else None,
            details={"purpose": purpose, "source": source, "contacts": len(consents)},
        )
    return consents


def consent_revoke(
    *,
    contact: Contact,
    purpose: str,
    actor: Any,
    source: str = "",
    request: HttpRequest | None = None,
) -> int:
    """Revoke every present consent of ``purpose``; returns how many were revoked.

    Revocation stamps the rows (they are never deleted). Idempotent: revoking twice
    revokes nothing the second time. Audits ``consent.revoke``.
    """
    if purpose not in ConsentPurpose.values:
        raise ConsentError(f"Unknown purpose; use one of {', '.join(ConsentPurpose.values)}.")
    now = timezone.now()
    with transaction.atomic():
        count = Consent.objects.filter(
            contact=contact, purpose=purpose, revoked_at__isnull=True
        ).update(
            revoked_at=now,
            revoked_by=actor if getattr(actor, "pk", None) else None,
            revocation_source=source[:32],
        )
        audit.record(
            "consent.revoke",
            actor=actor,
            request=request,
            target=contact,
            details={"purpose": purpose, "revoked": count},
        )
    return count


def consent_revoke_many(
    *,
    contact_ids: Sequence[int],
    purpose: str,
    actor: Any,
    source: str = "",
    request: HttpRequest | None = None,
) -> int:
    """Revoke present consents of ``purpose`` for many contacts (imports); returns how many.

    Like :func:`consent_revoke` (rows stamped, never deleted; idempotent) with one
    ``consent.revoke`` event for the whole call.
    """
    if purpose not in ConsentPurpose.values:
        raise ConsentError(f"Unknown purpose; use one of {', '.join(ConsentPurpose.values)}.")
    with transaction.atomic():
        count = Consent.objects.filter(
            contact_id__in=list(contact_ids), purpose=purpose, revoked_at__isnull=True
        ).update(
            revoked_at=timezone.now(),
            revoked_by=actor if getattr(actor, "pk", None) else None,
            revocation_source=source[:32],
        )
        audit.record(
            "consent.revoke",
            actor=actor,
            request=request,
            details={"purpose": purpose, "revoked": count, "contacts": len(contact_ids)},
        )
    return count


# --- suppression ------------------------------------------------------------------------------

_STATUS_FOR_REASON = {
    SuppressionReason.UNSUBSCRIBE: ContactStatus.UNSUBSCRIBED,
    SuppressionReason.HARD_BOUNCE: ContactStatus.BOUNCED,
    SuppressionReason.COMPLAINT: ContactStatus.COMPLAINED,
}


def suppression_add(
    *,
    reason: str,
    actor: Any,
    email: str | None = None,
    contact: Contact | None = None,
    note: str = "",
    request: HttpRequest | None = None,
) -> tuple[Suppression, bool]:
    """Suppress an address (by ``email`` or ``contact``); returns ``(row, created)``.

    Idempotent: an address already suppressed keeps its existing row. For unsubscribe,
    hard bounce and complaint the matching contact's status changes too. Audits
    ``suppression.add``. Raises :class:`SuppressionError` for bad input.
    """
    if reason not in SuppressionReason.values:
        raise SuppressionError(f"Unknown reason; use one of {', '.join(SuppressionReason.values)}.")
    if len(note) > 500:
        raise SuppressionError("Note: at most 500 characters.")
    if contact is not None:
        bidx = bytes(contact.email_bidx)
    elif email is not None:
        try:
            address, _ = upsert.attributes.normalize_email(email)
        except ContactValueError as error:
            raise SuppressionError(error.message) from None
        bidx = upsert.email_bidx(address)
    else:
        raise SuppressionError("Give the email address to suppress.")
    with transaction.atomic():
        current = (
            Suppression.objects.select_for_update().filter(email_bidx=bidx, removed_at=None).first()
        )
        created = current is None
        if current is None:
            try:
                with transaction.atomic():
                    current = Suppression.objects.create(
                        email_bidx=bidx,
                        reason=reason,
                        note=note.strip(),
                        created_by=actor if getattr(actor, "pk", None) else None,
                    )
            except IntegrityError:
                # A concurrent add won the race; the address is suppressed either way.
                current = Suppression.objects.get(email_bidx=bidx, removed_at=None)
                created = False
        status = _STATUS_FOR_REASON.get(SuppressionReason(reason))
        target = contact or Contact.objects.filter(email_bidx=bidx).first()
        if status is not None and target is not None:
            contact_set_status(
                contact=target, status=status, actor=actor, request=request, reason=reason
            )
        if created:
            audit.record(
                "suppression.add",
                actor=actor,
                request=request,
                target=current,
                details={"reason": reason, "contact": target.pk if target else None},
            )
    return current, created


def suppression_remove(
    *,
    suppression: Suppression,
    actor: Any,
    note: str,
    request: HttpRequest | None = None,
) -> None:
    """Lift a suppression (the row stays, stamped with who and why). Audited.

    A contact whose status came from this suppression's reason becomes active again.
    Raises :class:`SuppressionError` without a note or when already removed.
    """
    if not note.strip():
        raise SuppressionError("Say why the suppression is removed.")
    with transaction.atomic():
        row = Suppression.objects.select_for_update().get(pk=suppression.pk)
        if row.removed_at is not None:
            raise SuppressionError("This suppression was already removed.")
        row.removed_at = timezone.now()
        row.removed_by = actor if getattr(actor, "pk", None) else None
        row.removal_note = note.strip()[:500]
        row.save(update_fields=["removed_at", "removed_by", "removal_note"])
        status = _STATUS_FOR_REASON.get(SuppressionReason(row.reason))
        target = Contact.objects.filter(email_bidx=row.email_bidx).first()
        if status is not None and target is not None and target.status == status:
            contact_set_status(
                contact=target,
                status=ContactStatus.ACTIVE,
                actor=actor,
                request=request,
                reason="suppression_removed",
            )
        audit.record(
            "suppression.remove",
            actor=actor,
            request=request,
            target=row,
            details={"reason": row.reason, "contact": target.pk if target else None},
        )
    suppression.removed_at = row.removed_at


# --- lists ------------------------------------------------------------------------------------


def contact_list_create(
    *, name: str, actor: Any, description: str = "", request: HttpRequest | None = None
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
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit.record("list.create", actor=actor, request=request, target=contact_list)
    return contact_list


def contact_list_update(
    *,
    contact_list: ContactList,
    actor: Any,
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
    *, contact_list: ContactList, actor: Any, request: HttpRequest | None = None
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
    actor: Any,
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
                    added_by=actor if getattr(actor, "pk", None) else None,
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
    actor: Any,
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


# --- segments ---------------------------------------------------------------------------------


def segment_create(
    *,
    name: str,
    rules: Any,
    actor: Any,
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
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit.record("segment.create", actor=actor, request=request, target=segment)
    return segment


def segment_update(
    *,
    segment: Segment,
    actor: Any,
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


def segment_delete(*, segment: Segment, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete a segment definition (contacts are untouched). Audits ``segment.delete``."""
    with transaction.atomic():
        audit.record("segment.delete", actor=actor, request=request, target=segment)
        segment.delete()


def segment_count(
    *,
    segment: Segment,
    actor: Any,
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
    actor: Any,
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


# --- custom fields ----------------------------------------------------------------------------


def custom_field_create(
    *,
    key: str,
    label: str,
    kind: str,
    actor: Any,
    phi: bool = True,
    choices: Sequence[str] = (),
    help_text: str = "",
    request: HttpRequest | None = None,
) -> CustomField:
    """Define a custom contact field. Audits ``custom_field.create``.

    ``key`` is a slug used in imports and segments (``custom.<key>``). Raises
    :class:`CustomFieldError` for a bad key, kind, label or choices.
    """
    import re

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
            created_by=actor if getattr(actor, "pk", None) else None,
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
    actor: Any,
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
    *, custom_field: CustomField, actor: Any, request: HttpRequest | None = None
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
