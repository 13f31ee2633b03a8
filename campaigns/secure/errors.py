"""Exceptions of the secure-channel building blocks.

Every message here is written for the person who uploaded a key or runs the
deployment. None of them carries PHI: no e-mail address, no user id, no content
(docs/architecture.md, rule 4). ``code`` is a stable machine-readable identifier that
forms, the API and the import report can key on.
"""

from __future__ import annotations

from campaigns.transport import TlsRefused, TransportError


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


class TLSRequiredError(TlsRefused):
    """Verified TLS was required and could not be had; nothing was sent.

    A :class:`campaigns.transport.TlsRefused` (transient: defer, never downgrade), so
    the pipeline handles a direct-to-MX refusal like a relay refusal.

    ``reason`` is one of ``no_tls`` (the server does not offer STARTTLS),
    ``untrusted_cert`` (the certificate does not verify, or does not match the host
    name), ``tls_failed`` (the handshake failed otherwise), ``policy`` (an MTA-STS
    policy in enforce mode excludes every MX host), ``not_configured`` (the relay is
    configured without TLS while TLS is required).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DestinationUnreachableError(TransportError):
    """No receiving server could be reached (DNS failure, connection refused, timeout).

    Transient as far as the caller can tell: defer and retry, do not downgrade.
    """


class PolicyError(ValueError):
    """A secure-delivery policy cannot be applied to this send (user-facing text)."""

    code = "policy"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
