"""S/MIME (RFC 8551): validating contacts' certificates and encrypting messages to them.

Encryption is CMS EnvelopedData with AES-256-CBC content encryption and RSA key
transport (``cryptography``'s ``PKCS7EnvelopeBuilder``, which supports AES-128/256
and RSA recipients only). With an organization signing certificate the message is
first signed (``multipart/signed``, detached SHA-256 signature, RFC 8551 §3.5.3) and
the signed entity is then enveloped — sign-then-encrypt, so the signature is hidden
inside the encryption and the recipient's client shows both.

Error messages never contain the certificate's subject or the contact's address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import Message
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from luxmail.securemail import mime
from luxmail.securemail.errors import CertificateError, EncryptionError, SigningKeyError

__all__ = [
    "CertificateInfo",
    "SigningCertificate",
    "certificate_usable",
    "encrypt_message",
    "load_certificate",
    "load_signing_certificate",
    "validate_certificate",
]

MAX_CERTIFICATE_BYTES = 256 * 1024
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class CertificateInfo:
    """What a validated certificate is: store ``pem``; show the rest to the user."""

    fingerprint_sha256: str  # upper-case hex
    serial_number: str  # hex
    issuer: str  # RFC 4514 form
    self_signed: bool
    key_algorithm: str  # e.g. "RSA 2048"
    not_valid_before: dt.datetime
    not_valid_after: dt.datetime
    pem: str


@dataclass(frozen=True)
class SigningCertificate:
    """The organization's signing certificate and its private key."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()


# --- validation ------------------------------------------------------------------------


def validate_certificate(
    data: str | bytes, *, email: str, now: dt.datetime | None = None
) -> CertificateInfo:
    """Check that ``data`` is an X.509 certificate LuxMail can encrypt to for ``email``.

    Accepts PEM or DER, a single certificate or a bundle / PKCS#7 file holding the
    contact's certificate and its issuers (the end-entity certificate is picked).
    Raises :class:`CertificateError` — ``code`` one of ``empty``, ``too_large``,
    ``parse``, ``private_key``, ``several_certificates``, ``ca_certificate``,
    ``not_yet_valid``, ``expired``, ``unsupported_key``, ``weak_key``, ``key_usage``,
    ``extended_key_usage``, ``no_email``, ``email_mismatch``. Pure: no I/O, no audit.
    """
    now = now or dt.datetime.now(dt.UTC)
    certificate = _parse_end_entity(data)
    if certificate.not_valid_before_utc > now:
        raise CertificateError(
            f"This certificate is not valid until {certificate.not_valid_before_utc:%Y-%m-%d}. "
            "Upload it again from that date, or ask the recipient for their current one.",
            code="not_yet_valid",
        )
    if certificate.not_valid_after_utc <= now:
        raise CertificateError(
            f"This certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}. Ask "
            "the recipient for their renewed certificate.",
            code="expired",
        )
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        kind = "elliptic-curve" if isinstance(public_key, ec.EllipticCurvePublicKey) else "non-RSA"
        raise CertificateError(
            f"This certificate has an {kind} key. LuxMail encrypts S/MIME to RSA "
            "certificates only; ask the recipient for an RSA certificate, or use their "
            "OpenPGP key or the secure portal instead.",
            code="unsupported_key",
        )
    if public_key.key_size < MIN_RSA_BITS:
        raise CertificateError(
            f"This certificate's RSA key has {public_key.key_size} bits; at least "
            f"{MIN_RSA_BITS} are required.",
            code="weak_key",
        )
    key_usage = _extension(certificate, x509.KeyUsage)
    if key_usage is not None and not key_usage.key_encipherment:
        raise CertificateError(
            "This certificate may not be used for encryption (its key usage does not "
            "include key encipherment); it is probably a signing-only certificate. Ask the "
            "recipient for their encryption certificate.",
            code="key_usage",
        )
    extended = _extension(certificate, x509.ExtendedKeyUsage)
    if extended is not None and not (
        ExtendedKeyUsageOID.EMAIL_PROTECTION in extended
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in extended
    ):
        raise CertificateError(
            "This certificate is not issued for e-mail protection (its extended key usage "
            "lacks 'E-mail Protection'); it is probably a web-server or code-signing "
            "certificate.",
            code="extended_key_usage",
        )
    addresses = certificate_emails(certificate)
    if not addresses:
        raise CertificateError(
            "This certificate names no e-mail address (neither in its subject alternative "
            "name nor in its subject), so it cannot be matched to the contact.",
            code="no_email",
        )
    if email.strip().lower() not in addresses:
        raise CertificateError(
            "The certificate's e-mail address does not match the contact's email address. "
            "Upload the certificate issued for this contact's address.",
            code="email_mismatch",
        )
    return CertificateInfo(
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex().upper(),
        serial_number=format(certificate.serial_number, "x"),
        issuer=certificate.issuer.rfc4514_string(),
        self_signed=certificate.issuer == certificate.subject,
        key_algorithm=f"RSA {public_key.key_size}",
        not_valid_before=certificate.not_valid_before_utc,
        not_valid_after=certificate.not_valid_after_utc,
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


def certificate_usable(data: str | bytes, *, email: str, now: dt.datetime | None = None) -> bool:
    """True when :func:`validate_certificate` would accept ``data`` for ``email`` now."""
    try:
        validate_certificate(data, email=email, now=now)
    except CertificateError:
        return False
    return True


def certificate_emails(certificate: x509.Certificate) -> set[str]:
    """The lower-cased addresses in the SAN rfc822Name entries and subject emailAddress."""
    found: set[str] = set()
    san = _extension(certificate, x509.SubjectAlternativeName)
    if san is not None:
        found.update(
            str(value).strip().lower() for value in san.get_values_for_type(x509.RFC822Name)
        )
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
        value = attribute.value
        found.add(
            (value.decode("ascii", "replace") if isinstance(value, bytes) else value)
            .strip()
            .lower()
        )
    return {address for address in found if "@" in address}


def load_certificate(data: str | bytes) -> x509.Certificate:
    """Parse a stored (already validated) certificate for encryption."""
    return _parse_end_entity(data)


def load_signing_certificate(
    certificate: str | bytes,
    private_key: str | bytes,
    *,
    passphrase: str | None = None,
    now: dt.datetime | None = None,
) -> SigningCertificate:
    """Load the organization's S/MIME signing certificate (PEM, chain allowed) and key.

    Raises :class:`SigningKeyError` when the key does not belong to the certificate, the
    certificate is not currently valid or may not sign e-mail.
    """
    now = now or dt.datetime.now(dt.UTC)
    raw = certificate.encode() if isinstance(certificate, str) else bytes(certificate)
    try:
        chain = x509.load_pem_x509_certificates(raw)
    except ValueError:
        try:
            chain = [x509.load_der_x509_certificate(raw)]
        except ValueError:
            raise SigningKeyError(
                "The signing certificate is not a readable PEM or DER certificate.", code="parse"
            ) from None
    key_raw = private_key.encode() if isinstance(private_key, str) else bytes(private_key)
    try:
        key = serialization.load_pem_private_key(
            key_raw, password=passphrase.encode() if passphrase else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningKeyError(
            "The signing private key is not readable (PEM), or its passphrase is wrong.",
            code="key_parse",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningKeyError(
            "The signing key must be an RSA or elliptic-curve key.", code="unsupported_key"
        )
    public_numbers = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    leaf = next(
        (
            item
            for item in chain
            if item.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == public_numbers
        ),
        None,
    )
    if leaf is None:
        raise SigningKeyError(
            "The private key does not belong to the signing certificate.", code="key_mismatch"
        )
    if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
        raise SigningKeyError(
            "The signing certificate is not currently valid (check its dates).", code="expired"
        )
    key_usage = _extension(leaf, x509.KeyUsage)
    if key_usage is not None and not (key_usage.digital_signature or key_usage.content_commitment):
        raise SigningKeyError(
            "The signing certificate's key usage does not allow digital signatures.",
            code="key_usage",
        )
    extended = _extension(leaf, x509.ExtendedKeyUsage)
    if extended is not None and ExtendedKeyUsageOID.EMAIL_PROTECTION not in extended:
        raise SigningKeyError(
            "The signing certificate is not issued for e-mail protection.",
            code="extended_key_usage",
        )
    return SigningCertificate(
        certificate=leaf,
        private_key=key,
        chain=tuple(item for item in chain if item is not leaf),
    )


# --- encryption ------------------------------------------------------------------------


def encrypt_message(
    message: bytes | str | Message,
    certificate: x509.Certificate | str | bytes,
    *,
    sign_with: SigningCertificate | None = None,
    outer_subject: str | None = None,
) -> bytes:
    """Wrap ``message`` in ``application/pkcs7-mime; smime-type=enveloped-data`` (AES-256).

    ``message`` is a complete rendered message. Its ``Content-*`` fields and body are
    encrypted (signed first when ``sign_with`` is given); the transport header fields
    stay outside. ``outer_subject`` replaces the visible Subject (use a generic one for a
    PHI-bearing template); the real header fields then travel inside as protected
    headers. Returns CRLF-terminated bytes ready for DKIM signing and SMTP.
    """
    recipient = (
        certificate if isinstance(certificate, x509.Certificate) else load_certificate(certificate)
    )
    parts = mime.split(message)
    entity = mime.inner_entity(parts, protect_headers=outer_subject is not None)
    if sign_with is not None:
        entity = _signed_entity(entity, sign_with)
    try:
        enveloped = (
            pkcs7.PKCS7EnvelopeBuilder()
            .set_data(entity)
            .add_recipient(recipient)
            .set_content_encryption_algorithm(algorithms.AES256)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
    except (TypeError, ValueError, UnsupportedAlgorithm):
        # Fail closed: a certificate that slipped past validation (e.g. an EC key).
        raise EncryptionError(
            "The recipient's S/MIME certificate cannot be used for encryption."
        ) from None
    crlf = mime.CRLF
    headers = (
        b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"'
        + crlf
        + b"Content-Transfer-Encoding: base64"
        + crlf
        + b'Content-Disposition: attachment; filename="smime.p7m"'
        + crlf
        + b"Content-Description: S/MIME Encrypted Message"
        + crlf
    )
    return (
        mime.outer_header_block(parts, subject=outer_subject)
        + headers
        + crlf
        + mime.base64_lines(enveloped)
    )


def _signed_entity(entity: bytes, signer: SigningCertificate) -> bytes:
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(entity)
        .add_signer(signer.certificate, signer.private_key, hashes.SHA256())
    )
    for extra in signer.chain:
        builder = builder.add_certificate(extra)
    signature = builder.sign(
        serialization.Encoding.DER,
        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
    )
    boundary = mime.new_boundary()
    crlf = mime.CRLF
    return b"".join(
        [
            b"Content-Type: multipart/signed;" + crlf,
            b' protocol="application/pkcs7-signature"; micalg=sha-256;' + crlf,
            f' boundary="{boundary}"'.encode() + crlf,
            crlf,
            b"This is a cryptographically signed message in MIME format." + crlf,
            crlf,
            f"--{boundary}".encode() + crlf,
            # The CRLF before a boundary belongs to the delimiter (RFC 2046 §5.1.1), so
            # the signed bytes are exactly ``entity``.
            entity + crlf,
            f"--{boundary}".encode() + crlf,
            b'Content-Type: application/pkcs7-signature; name="smime.p7s"' + crlf,
            b"Content-Transfer-Encoding: base64" + crlf,
            b'Content-Disposition: attachment; filename="smime.p7s"' + crlf,
            b"Content-Description: S/MIME Cryptographic Signature" + crlf,
            crlf,
            mime.base64_lines(signature),
            f"--{boundary}--".encode() + crlf,
        ]
    )


# --- internals -------------------------------------------------------------------------

_T = TypeVar("_T", bound=x509.ExtensionType)


def _extension(certificate: x509.Certificate, kind: type[_T]) -> _T | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _parse_end_entity(data: str | bytes) -> x509.Certificate:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if not raw.strip():
        raise CertificateError(
            "The certificate is empty. Upload the contact's S/MIME certificate (.pem, .crt, "
            ".cer or .p7b).",
            code="empty",
        )
    if len(raw) > MAX_CERTIFICATE_BYTES:
        raise CertificateError(
            "The file is too large to be a certificate (limit 256 KB).", code="too_large"
        )
    if b"PRIVATE KEY-----" in raw:
        raise CertificateError(
            "This file contains a private key. Never upload private keys: upload only the "
            "recipient's certificate. If the private key was exposed, the recipient should "
            "replace their certificate.",
            code="private_key",
        )
    certificates = _parse_all(raw)
    if not certificates:
        raise CertificateError(
            "This is not a readable X.509 certificate. Upload a PEM ('-----BEGIN "
            "CERTIFICATE-----') or DER (.cer/.crt) file, or a PKCS#7 bundle (.p7b).",
            code="parse",
        )
    leaves = [c for c in certificates if not _is_ca(c)]
    if not leaves:
        raise CertificateError(
            "This is a certificate authority's certificate, not a person's. Upload the "
            "recipient's own certificate.",
            code="ca_certificate",
        )
    if len(leaves) > 1:
        raise CertificateError(
            f"The file holds {len(leaves)} personal certificates. Upload only the "
            "recipient's certificate (its issuers may be included).",
            code="several_certificates",
        )
    return leaves[0]


def _parse_all(raw: bytes) -> list[x509.Certificate]:
    stripped = raw.strip()
    if b"-----BEGIN PKCS7-----" in stripped:
        try:
            return list(pkcs7.load_pem_pkcs7_certificates(stripped))
        except ValueError:
            return []
    if stripped.startswith(b"-----BEGIN"):
        try:
            return list(x509.load_pem_x509_certificates(stripped))
        except ValueError:
            return []
    try:
        return [x509.load_der_x509_certificate(raw)]
    except ValueError:
        pass
    try:
        return list(pkcs7.load_der_pkcs7_certificates(raw))
    except ValueError:
        return []


def _is_ca(certificate: x509.Certificate) -> bool:
    constraints = _extension(certificate, x509.BasicConstraints)
    return bool(constraints is not None and constraints.ca)
