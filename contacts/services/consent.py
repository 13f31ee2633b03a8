"""Consent writes: grant and revoke, one contact or many, with evidence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts.models import (
    Consent,
    ConsentPurpose,
    ConsentSource,
    Contact,
)
from contacts.services.errors import ConsentError
from luxmail import audit
from luxmail.actors import Actor, user_of

# --- consent ----------------------------------------------------------------------------------


def consent_grant(
    *,
    contact: Contact,
    purpose: str,
    source: str,
    actor: Actor,
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
    actor: Actor,
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
    recorder = user_of(actor)
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
    actor: Actor,
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
            revoked_by=user_of(actor),
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
    actor: Actor,
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
            revoked_by=user_of(actor),
            revocation_source=source[:32],
        )
        audit.record(
            "consent.revoke",
            actor=actor,
            request=request,
            details={"purpose": purpose, "revoked": count, "contacts": len(contact_ids)},
        )
    return count
