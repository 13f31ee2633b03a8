"""The organization's Ed25519 evidence key (``EvidenceKey``).

Created on first use; the private key is sealed with the key ring (``luxmail.crypto``)
and decrypted only to sign, through ``crypto.secret_access``. Key creation is audited.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import IntegrityError, transaction

from campaigns.models import EvidenceKey
from luxmail import audit, crypto


def _public_raw(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def evidence_key_current() -> EvidenceKey:
    """The current key, created (and audited as ``evidence.key_create``) when missing."""
    existing = EvidenceKey.objects.filter(retired_at__isnull=True).first()
    if existing is not None:
        return existing
    private = Ed25519PrivateKey.generate()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    fingerprint = hashlib.sha256(_public_raw(private)).hexdigest()
    row = EvidenceKey(public_pem=public_pem, fingerprint=fingerprint)
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    crypto.seal(row, "private_key", raw)
    try:
        with transaction.atomic():
            row.save()
            audit.record(
                "evidence.key_create", target=row, details={"fingerprint": row.fingerprint}
            )
    except IntegrityError:
        # Another process created the current key first: use that one.
        return EvidenceKey.objects.get(retired_at__isnull=True)
    return row


def sign(key: EvidenceKey, data: bytes) -> bytes:
    """The raw 64-byte Ed25519 signature of ``data`` (what ``openssl pkeyutl -rawin``
    checks)."""
    raw = crypto.reveal(key, "private_key", access=crypto.secret_access("sign evidence pack"))
    return Ed25519PrivateKey.from_private_bytes(bytes(raw)).sign(data)
