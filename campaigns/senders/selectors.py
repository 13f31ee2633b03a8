"""Reads of the senders concern: the organization's signing keys, loaded for signing."""

from __future__ import annotations

import logging
from typing import Any

from campaigns.models import OrgSigningKey, SigningKind
from luxmail import crypto
from luxmail.securemail import pgp, smime
from luxmail.securemail.errors import SigningKeyError

logger = logging.getLogger(__name__)


def org_signers() -> dict[str, Any]:
    """The organization's usable signing keys, by kind (``smime`` / ``pgp``), loaded for
    signing: decrypted through ``crypto.secret_access`` and checked again. A key that no
    longer signs (its certificate expired, say) is logged and skipped: messages then go
    out encrypted but unsigned, and the Signing keys page says why."""
    access = crypto.secret_access("sign outgoing secure mail")
    signers: dict[str, Any] = {}
    for row in OrgSigningKey.objects.all():
        secret = crypto.reveal(row, "private_key", access=access)
        passphrase = crypto.reveal(row, "passphrase", access=access)
        try:
            if row.kind == SigningKind.SMIME:
                signers[row.kind] = smime.load_signing_certificate(row.public, secret)
            else:
                signers[row.kind] = pgp.load_signing_key(secret, passphrase=passphrase)
        except SigningKeyError as error:
            logger.warning(
                "The organization's %s signing key %s cannot sign (%s): sending unsigned.",
                row.kind,
                row.fingerprint,
                error.code,
            )
    return signers
