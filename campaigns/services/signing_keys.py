"""The organization's S/MIME and OpenPGP signing keys: upload and removal."""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives import hashes, serialization
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.models import (
    OrgSigningKey,
    SigningKind,
)
from campaigns.secure.errors import SigningKeyError
from luxmail import audit, crypto
from luxmail.actors import Actor, user_of
from luxmail.securemail import pgp, smime

# --- the organization's signing keys ------------------------------------------------------

_SIGNING_UPLOAD_MAX = 64 * 1024


def org_signing_key_set(
    *,
    kind: str,
    private_key: str | bytes,
    certificate: str | bytes = "",
    passphrase: str = "",
    actor: Actor,
    request: HttpRequest | None = None,
) -> OrgSigningKey:
    """Validate and store (or replace) the organization's signing key of ``kind``.

    From then on every message of that kind is signed, then encrypted. S/MIME:
    ``certificate`` is the signing certificate (PEM, chain allowed) and ``private_key``
    its PEM key, stored without the passphrase (encrypted with the key ring). OpenPGP:
    ``private_key`` is the ASCII-armored secret key, kept as uploaded with its passphrase
    (both encrypted). Raises :class:`campaigns.secure.errors.SigningKeyError` whose text
    tells the uploader what is wrong; nothing is stored then. Audits
    ``secure.signing_key_set`` (kind, fingerprint; never key material).
    """

    if kind not in SigningKind.values:
        raise SigningKeyError("Choose an S/MIME certificate or an OpenPGP key.", code="kind")
    if not private_key:
        raise SigningKeyError("Upload the private key.", code="empty")
    if len(private_key) + len(certificate) > _SIGNING_UPLOAD_MAX:
        raise SigningKeyError("The upload is larger than 64 KB: not a signing key.", code="size")
    secret: bytes
    if kind == SigningKind.SMIME:
        if not certificate:
            raise SigningKeyError("Upload the signing certificate too.", code="empty")
        cert = smime.load_signing_certificate(certificate, private_key, passphrase=passphrase)
        secret = cert.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = "".join(
            item.public_bytes(serialization.Encoding.PEM).decode()
            for item in (cert.certificate, *cert.chain)
        )
        fingerprint = cert.certificate.fingerprint(hashes.SHA256()).hex().upper()
        identity = cert.certificate.subject.rfc4514_string()
        expires_at: datetime | None = cert.certificate.not_valid_after_utc
        passphrase = ""
    else:
        key = pgp.load_signing_key(private_key, passphrase=passphrase or None)
        secret = private_key.encode() if isinstance(private_key, str) else bytes(private_key)
        public, fingerprint, identity, expires_at = key.public_armored, key.fingerprint, "", None
    with transaction.atomic():
        row = OrgSigningKey.objects.select_for_update().filter(kind=kind).first()
        row = row or OrgSigningKey(kind=kind)
        crypto.seal(row, "private_key", secret)
        crypto.seal(row, "passphrase", passphrase or None)
        row.public, row.fingerprint, row.identity = public, fingerprint, identity
        row.expires_at, row.created_by, row.created_at = expires_at, user_of(actor), timezone.now()
        row.save()
        audit.record(
            "secure.signing_key_set",
            actor=actor,
            request=request,
            target=row,
            details={"kind": kind, "fingerprint": fingerprint},
        )
    return row


def org_signing_key_remove(*, kind: str, actor: Actor, request: HttpRequest | None = None) -> bool:
    """Stop signing messages of ``kind``; returns whether a key was removed. Audited."""
    with transaction.atomic():
        row = OrgSigningKey.objects.select_for_update().filter(kind=kind).first()
        if row is None:
            return False
        audit.record(
            "secure.signing_key_remove",
            actor=actor,
            request=request,
            target=row,
            details={"kind": kind, "fingerprint": row.fingerprint},
        )
        row.delete()
    return True
