"""Writes of contacts' S/MIME certificates and OpenPGP public keys (issue 5).

An upload is validated by ``luxmail.securemail.smime`` / ``luxmail.securemail.pgp`` against
the contact's *current* e-mail address (parsable, not expired, the certificate's
address or the key's user id matches, usable for encryption) and then becomes the
contact's active key of that kind; the previous one is kept, revoked with reason
``replaced``. Errors are :class:`campaigns.secure.errors.KeyMaterialError` subclasses
whose text tells the uploader what to do and names no person or address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts.models import Contact, ContactEncryptionKey, EncryptionKeyKind
from luxmail import audit, crypto
from luxmail.actors import Actor
from luxmail.securemail import pgp, smime
from luxmail.securemail.errors import KeyMaterialError

__all__ = [
    "KeyMaterialError",
    "ValidatedKey",
    "contact_key_remove",
    "contact_key_upload",
    "key_validate",
]


@dataclass(frozen=True)
class ValidatedKey:
    kind: str
    material: str  # normalized: armored OpenPGP certificate or PEM certificate
    fingerprint: str
    serial_number: str
    algorithm: str
    not_after: dt.datetime | None


def key_validate(*, kind: str, data: str | bytes, email: str) -> ValidatedKey:
    """Validate ``data`` as a key of ``kind`` for ``email``; pure (no I/O, no audit).

    Raises :class:`KeyMaterialError` (``code`` says why) with a user-facing message.
    """
    if kind == EncryptionKeyKind.SMIME:
        certificate = smime.validate_certificate(data, email=email)
        return ValidatedKey(
            kind=kind,
            material=certificate.pem,
            fingerprint=certificate.fingerprint_sha256,
            serial_number=certificate.serial_number[:64],
            algorithm=certificate.key_algorithm,
            not_after=certificate.not_valid_after,
        )
    if kind == EncryptionKeyKind.PGP:
        key = pgp.validate_public_key(data, email=email)
        return ValidatedKey(
            kind=kind,
            material=key.armored,
            fingerprint=key.fingerprint,
            serial_number="",
            algorithm=key.algorithm,
            not_after=key.expires_at,
        )
    raise KeyMaterialError(
        "Choose whether this is an S/MIME certificate or an OpenPGP public key.",
        code="unknown_kind",
    )


def _contact_email(contact: Contact, *, actor: Actor, request: HttpRequest | None) -> str:
    access = crypto.phi_access(
        actor=actor,
        purpose="contact_key.validate",
        target=contact,
        request=request,
        details={"contact_id": contact.pk},
    )
    return str(crypto.reveal(contact, "email", access=access))


def contact_key_upload(
    *,
    contact: Contact,
    kind: str,
    data: str | bytes,
    actor: Actor,
    request: HttpRequest | None = None,
    source: str = "ui",
) -> ContactEncryptionKey:
    """Validate and store ``data`` as the contact's active key of ``kind``.

    Reads the contact's e-mail address to match the key (one ``phi.access`` event,
    purpose ``contact_key.validate``). The previous active key of the same kind is
    revoked with reason ``replaced``; uploading the same key again is accepted and
    replaces the row (validation date refreshed). Audits ``contact.key_upload`` with
    the kind, key and replaced key ids and the source (ui, api, import). Raises
    :class:`KeyMaterialError`.
    """
    email = _contact_email(contact, actor=actor, request=request)
    validated = key_validate(kind=kind, data=data, email=email)
    return _store(contact=contact, validated=validated, actor=actor, request=request, source=source)


def _store(
    *,
    contact: Contact,
    validated: ValidatedKey,
    actor: Actor,
    request: HttpRequest | None,
    source: str,
) -> ContactEncryptionKey:

    now = timezone.now()
    with transaction.atomic():
        Contact.objects.select_for_update().only("id").get(pk=contact.pk)
        previous = list(
            ContactEncryptionKey.objects.select_for_update().filter(
                contact=contact, kind=validated.kind, revoked_at__isnull=True
            )
        )
        for old in previous:
            old.revoked_at = now
            old.revoked_reason = "replaced"
            old.save(update_fields=["revoked_at", "revoked_reason"])
        key = ContactEncryptionKey(
            contact=contact,
            kind=validated.kind,
            fingerprint=validated.fingerprint,
            serial_number=validated.serial_number,
            algorithm=validated.algorithm[:64],
            not_after=validated.not_after,
            validated_at=now,
            created_by=actor if isinstance(actor, get_user_model()) else None,
        )
        crypto.seal(key, "material", validated.material)
        key.save()
        audit.record(
            "contact.key_upload",
            actor=actor,
            request=request,
            target=contact,
            details={
                "contact_id": contact.pk,
                "kind": validated.kind,
                "key_id": key.pk,
                "replaced_key_ids": [old.pk for old in previous],
                "source": source,
            },
        )
    return key


def contact_key_store_validated(
    *,
    contact: Contact,
    validated: ValidatedKey,
    actor: Actor,
    source: str = "import",
) -> ContactEncryptionKey:
    """Store a key already validated against the contact's address (the import path,
    which holds the address from the file row). Same guarantees and audit as
    :func:`contact_key_upload`."""
    return _store(contact=contact, validated=validated, actor=actor, request=None, source=source)


def contact_key_remove(
    *, key: ContactEncryptionKey, actor: Actor, request: HttpRequest | None = None
) -> ContactEncryptionKey:
    """Revoke an active key (reason ``removed``): later sends no longer use it.

    Idempotent for an already revoked key. Audits ``contact.key_remove``.
    """
    with transaction.atomic():
        key = ContactEncryptionKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is not None:
            return key
        key.revoked_at = timezone.now()
        key.revoked_reason = "removed"
        key.save(update_fields=["revoked_at", "revoked_reason"])
        audit.record(
            "contact.key_remove",
            actor=actor,
            request=request,
            target=key.contact,
            details={"contact_id": key.contact_id, "kind": key.kind, "key_id": key.pk},
        )
    return key
