"""Suppression writes: add and remove addresses, and the contact status they imply."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts import upsert
from contacts.attributes import ContactValueError
from contacts.models import (
    Contact,
    ContactStatus,
    Suppression,
    SuppressionReason,
)
from contacts.services.contacts import contact_set_status
from contacts.services.errors import SuppressionError
from luxmail import audit
from luxmail.actors import Actor, user_of

# --- suppression ------------------------------------------------------------------------------

_STATUS_FOR_REASON = {
    SuppressionReason.UNSUBSCRIBE: ContactStatus.UNSUBSCRIBED,
    SuppressionReason.HARD_BOUNCE: ContactStatus.BOUNCED,
    SuppressionReason.COMPLAINT: ContactStatus.COMPLAINED,
}


def suppression_add(
    *,
    reason: str,
    actor: Actor,
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
                        created_by=user_of(actor),
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
    actor: Actor,
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
        row.removed_by = user_of(actor)
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
