"""Contact writes: bulk upsert (imports, API), create, update, delete, status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts import upsert
from contacts.models import (
    Consent,
    Contact,
    ContactStatus,
)
from contacts.services.errors import (
    MAX_BATCH,
    ContactExists,
    ContactHeld,
    ContactInvalid,
    ContactsError,
)
from contacts.upsert import RowError
from luxmail import audit, crypto, holds
from luxmail.actors import Actor

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


def _lookup_access(actor: Actor, purpose: str, request: HttpRequest | None) -> crypto.Access:
    return crypto.phi_access(actor=actor, purpose=purpose, request=request)


def contacts_bulk_upsert(
    *,
    rows: Sequence[Mapping[str, Any]],
    actor: Actor,
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
    existing = _existing_by_bidx([v.email_bidx for v in valid if v.email_bidx is not None])
    # An external id may only move with its own contact.
    externals = {v.identity["external_id"]: v for v in valid if v.identity.get("external_id")}
    if externals:
        owners = _external_owners(list(externals))
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


def _external_owners(externals: list[str]) -> list[tuple[Any, Any]]:
    """``(external id, email blind index)`` of the stored contacts holding ``externals``
    (one array parameter: 2,000 ``IN`` parameters cost more to bind than to run)."""
    return list(
        Contact.objects.filter(external_id__any_of=externals).values_list(
            "external_id", "email_bidx"
        )
    )


def _existing_by_bidx(bidxs: Sequence[bytes]) -> dict[bytes, Contact]:
    """The stored contacts among ``bidxs``, by blind index.

    One ``= ANY(array)`` query finds which exist (an import's batch is mostly new
    contacts, and Django's ``IN`` of 2,000 binary parameters costs more to build than to
    run); only those are loaded as objects, with their profiles.
    """
    if not bidxs:
        return {}
    ids = list(Contact.objects.filter(email_bidx__any_of=bidxs).values_list("pk", flat=True))
    if not ids:
        return {}
    return {
        bytes(c.email_bidx): c
        for c in Contact.objects.select_related("profile").filter(pk__any_of=ids)
    }


def _raise_invalid(errors: list[RowError]) -> None:
    if errors:
        raise ContactInvalid(errors)


def contact_create(
    *,
    data: Mapping[str, Any],
    actor: Actor,
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
    actor: Actor,
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
    *,
    data: Mapping[str, Any],
    actor: Actor,
    request: HttpRequest | None = None,
    source: str = "api",
) -> tuple[Contact, bool]:
    """Create or update the contact with ``data['email']``; returns ``(contact, created)``.

    Blank values leave fields unchanged. Raises :class:`ContactInvalid`.
    """
    result = contacts_bulk_upsert(rows=[data], actor=actor, request=request, source=source)
    _raise_invalid(result.errors)
    return Contact.objects.get(pk=result.contact_ids[0]), result.created == 1


def contact_delete(*, contact: Contact, actor: Actor, request: HttpRequest | None = None) -> None:
    """Delete a contact with its profile, tokens, consents and list memberships.

    Suppressions are kept (they are keyed by address, not contact). Audits
    ``contact.delete`` with the contact's UUID and the number of consents removed.
    Raises :class:`ContactHeld` while a legal hold covers the contact (or the whole
    organization): deleting it would orphan the held records.
    """
    active = holds.active_holds()
    if active.organization or contact.pk in active.contact_ids:
        raise ContactHeld("This contact is under legal hold and cannot be deleted.")
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
    actor: Actor,
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
