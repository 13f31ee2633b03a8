"""Exceptions of the secure-channel building blocks.

Every message here is written for the person who uploaded a key or runs the
deployment. None of them carries PHI: no e-mail address, no user id, no content
(docs/architecture.md, rule 4). ``code`` is a stable machine-readable identifier that
forms, the API and the import report can key on.
"""

from __future__ import annotations

from luxmail.securemail.errors import (
    CertificateError,
    EncryptionError,
    KeyMaterialError,
    PublicKeyError,
    SigningKeyError,
)

# Re-exported: the key-material errors are part of the sending vocabulary too.
__all__ = [
    "CertificateError",
    "DestinationUnreachableError",
    "EncryptionError",
    "KeyMaterialError",
    "PolicyError",
    "PublicKeyError",
    "SigningKeyError",
    "TLSRequiredError",
]


class TransportError(Exception):
    """The relay could not be used; ``transient`` says whether retrying may help.

    Defined here, not in ``campaigns.sending.transport`` (which re-exports it), so that
    sending imports secure and never the reverse.
    """

    transient = True


class TlsRefused(TransportError):
    """TLS was required but unavailable or untrusted; the connection was not used."""


class TLSRequiredError(TlsRefused):
    """Verified TLS was required and could not be had; nothing was sent.

    A :class:`campaigns.sending.transport.TlsRefused` (transient: defer, never downgrade), so
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
