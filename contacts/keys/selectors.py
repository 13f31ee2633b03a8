"""Reads of contacts' S/MIME certificates and OpenPGP keys.

:func:`keys_for_send` is what the send pipeline uses: it re-validates every active key
at send time against the address the message goes to, so a key that expired, was
revoked by its owner or no longer matches a changed address is simply not used (the
channel decision falls through to the next channel).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from contacts.models import Contact, ContactEncryptionKey, EncryptionKeyKind
from luxmail import crypto
from luxmail.securemail import pgp, smime
from luxmail.securemail.errors import KeyMaterialError


def contact_keys(*, contact: Contact) -> QuerySet[ContactEncryptionKey]:
    """All keys of a contact, active ones first, newest first (material stays sealed)."""
    return (
        ContactEncryptionKey.objects.filter(contact=contact)
        .select_related("created_by")
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at", "-id")
    )


@dataclass(frozen=True)
class SendKeys:
    """A recipient's keys that are usable right now (parsed, ready to encrypt to)."""

    smime: Any = None  # cryptography x509.Certificate
    pgp: pgp.PublicKey | None = None


def keys_for_send(
    *, emails: Mapping[int, str], access: crypto.Access, now: dt.datetime | None = None
) -> dict[int, SendKeys]:
    """The usable keys of the contacts in ``emails`` (contact id → the address sent to).

    One query; decrypts key material with the caller's audited ``access`` (the send
    batch's). Each key is validated again now: expired, revoked-by-owner, weak or
    address-mismatched keys are left out. Contacts without a usable key are absent.
    """
    if not emails:
        return {}
    now = now or timezone.now()
    rows = ContactEncryptionKey.objects.filter(
        contact_id__any_of=list(emails), revoked_at__isnull=True
    ).filter(Q(not_after__isnull=True) | Q(not_after__gt=now))
    certificates: dict[int, Any] = {}
    public_keys: dict[int, pgp.PublicKey] = {}
    for row in rows:
        email = emails[row.contact_id]
        material = crypto.reveal(row, "material", access=access)
        try:
            if row.kind == EncryptionKeyKind.SMIME:
                smime.validate_certificate(material, email=email, now=now)
                certificates[row.contact_id] = smime.load_certificate(material)
            elif row.kind == EncryptionKeyKind.PGP:
                pgp.validate_public_key(material, email=email, now=now)
                public_keys[row.contact_id] = pgp.load_public_key(material)
        except KeyMaterialError:
            continue
    return {
        contact_id: SendKeys(smime=certificates.get(contact_id), pgp=public_keys.get(contact_id))
        for contact_id in set(certificates) | set(public_keys)
    }
