"""Exceptions of the key-material and secure-MIME building blocks.

Every message here is written for the person who uploaded a key or runs the
deployment. None of them carries PHI: no e-mail address, no user id, no content
(docs/architecture.md, rule 4). ``code`` is a stable machine-readable identifier that
forms, the API and the import report can key on.

They live in the platform layer because contacts (key upload) and campaigns (sending)
both validate keys: neither may import the other for it (docs/architecture.md, layers).
"""

from __future__ import annotations


class KeyMaterialError(ValueError):
    """An uploaded public key or certificate cannot be used; ``str()`` is user-facing."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class PublicKeyError(KeyMaterialError):
    """An OpenPGP public key cannot be used for a contact."""


class CertificateError(KeyMaterialError):
    """An S/MIME (X.509) certificate cannot be used for a contact."""


class SigningKeyError(KeyMaterialError):
    """The organization's signing key or certificate cannot be used."""


class EncryptionError(RuntimeError):
    """Building an encrypted message failed for a reason that is not the uploader's."""
