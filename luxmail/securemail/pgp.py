"""PGP/MIME (RFC 3156): validating contacts' public keys and encrypting messages to them.

Built on ``pysequoia`` (Sequoia-PGP through PyO3). It was chosen after testing
interoperability with GnuPG 2.2 — see docs/architecture.md, Decisions: for a v4 key
it writes v3 PKESK + SEIPDv1 (MDC) packets that ``gpg --decrypt`` 2.2 reads, needs no
``gpg`` binary in production, and costs well under a millisecond per message.

Typical use::

    info = validate_public_key(uploaded_text, email=contact_email)   # on upload
    store(info.armored, info.fingerprint, info.expires_at)
    ...
    key = load_public_key(stored_armored)                             # once per batch
    wire = encrypt_message(rendered_bytes, key, outer_subject="A secure message")

Error messages never contain the key's user ids or the contact's address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr

import pysequoia
from pysequoia import packet as pgp_packet

from luxmail.securemail import mime
from luxmail.securemail.errors import EncryptionError, PublicKeyError, SigningKeyError

__all__ = [
    "PublicKey",
    "PublicKeyInfo",
    "SigningKey",
    "encrypt_message",
    "key_usable",
    "load_public_key",
    "load_signing_key",
    "validate_public_key",
]

MAX_KEY_BYTES = 256 * 1024  # real certificates are a few KB; a keyserver dump is not a key
_PROBE = b"luxmail key probe"
_WEAK_MESSAGE = (
    "{what} under current security rules (it uses a weak algorithm, an RSA key shorter "
    "than 2048 bits, or a SHA-1 signature). Ask the recipient for a modern key."
)

_Tag = pgp_packet.Tag
_Alg = pgp_packet.PublicKeyAlgorithm

_CURVES = {
    "2b060104019755010501": "Curve25519",
    "2b06010401da470f01": "Ed25519",
    "2a8648ce3d030107": "NIST P-256",
    "2b81040022": "NIST P-384",
    "2b81040023": "NIST P-521",
    "2b2403030208010107": "brainpoolP256r1",
    "2b240303020801010b": "brainpoolP384r1",
    "2b240303020801010d": "brainpoolP512r1",
    "2b656f": "Curve448",
    "2b6571": "Ed448",
}
_ALGORITHM_NAMES = {
    int(_Alg.RSAEncryptSign): "RSA",
    int(_Alg.RSAEncrypt): "RSA",
    int(_Alg.RSASign): "RSA",
    int(_Alg.DSA): "DSA",
    int(_Alg.ElGamalEncrypt): "ElGamal",
    int(_Alg.ElGamalEncryptSign): "ElGamal",
    int(_Alg.ECDH): "ECDH",
    int(_Alg.ECDSA): "ECDSA",
    int(_Alg.EdDSA): "EdDSA",
    int(_Alg.X25519): "X25519",
    int(_Alg.X448): "X448",
    int(_Alg.Ed25519): "Ed25519",
    int(_Alg.Ed448): "Ed448",
    int(_Alg.MLKEM768_X25519): "ML-KEM-768+X25519",
    int(_Alg.MLKEM1024_X448): "ML-KEM-1024+X448",
}


@dataclass(frozen=True)
class PublicKeyInfo:
    """What a validated key is: store ``armored``; show the rest to the user."""

    fingerprint: str  # 40 (v4) or 64 (v6) upper-case hex digits
    version: int  # 4 or 6
    algorithm: str  # of the encryption subkey, e.g. "RSA 3072", "ECDH Curve25519"
    primary_algorithm: str
    created_at: dt.datetime
    expires_at: dt.datetime | None  # the earliest of the key's and its encryption subkey's
    armored: str  # the normalized public certificate, ASCII-armored


@dataclass(frozen=True)
class _Subkey:
    algorithm: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    can_encrypt: bool
    revoked: bool


class PublicKey:
    """A parsed recipient certificate, reusable for many messages."""

    __slots__ = ("_cert", "fingerprint")

    def __init__(self, cert: pysequoia.Cert) -> None:
        self._cert = cert
        self.fingerprint = cert.fingerprint.upper()

    @property
    def cert(self) -> pysequoia.Cert:
        return self._cert


class SigningKey:
    """The organization's OpenPGP secret key, used to sign what LuxMail encrypts."""

    __slots__ = ("_signer", "fingerprint", "public_armored")

    def __init__(self, tsk: pysequoia.Tsk, passphrase: str | None) -> None:
        self._signer = tsk.signer(passphrase)
        certificate = tsk.extract_certificate()
        self.fingerprint = certificate.fingerprint.upper()
        self.public_armored = str(certificate)

    @property
    def signer(self) -> pysequoia.PySigner:
        return self._signer


# --- validation ------------------------------------------------------------------------


def validate_public_key(
    data: str | bytes, *, email: str, now: dt.datetime | None = None
) -> PublicKeyInfo:
    """Check that ``data`` is an OpenPGP public key LuxMail can encrypt to for ``email``.

    Accepts one ASCII-armored (or binary) transferable public key. Raises
    :class:`PublicKeyError` — with ``code`` one of ``empty``, ``too_large``, ``parse``,
    ``several_keys``, ``secret_key``, ``revoked``, ``expired``, ``no_encryption_key``,
    ``encryption_key_expired``, ``encryption_key_revoked``, ``weak_key``,
    ``no_user_id``, ``email_mismatch`` — whose text tells the uploader what to do.
    Pure: no I/O, no audit.
    """
    now = now or dt.datetime.now(dt.UTC)
    cert = _parse_single(data)
    try:
        # Both go through Sequoia's standard policy, which refuses a primary key with a
        # broken algorithm (RSA < 2048, DSA-1024, ...) or only SHA-1 self-signatures.
        revoked = cert.is_revoked
        expires = cert.expiration
    except RuntimeError:
        raise PublicKeyError(
            _WEAK_MESSAGE.format(what="This key's primary key is not acceptable"), code="weak_key"
        ) from None
    if revoked:
        raise PublicKeyError(
            "This key has been revoked by its owner. Ask the recipient for their current key.",
            code="revoked",
        )
    if expires is not None and expires <= now:
        raise PublicKeyError(
            f"This key expired on {expires:%Y-%m-%d}. Ask the recipient for a renewed key "
            "(or for the key with its extended expiry date).",
            code="expired",
        )
    primary_algorithm, created_at, version, subkeys = _describe(cert)
    encryption = [s for s in subkeys if s.can_encrypt]
    live = [
        s
        for s in encryption
        if not s.revoked and (s.expires_at is None or s.expires_at > now) and s.created_at <= now
    ]
    if not encryption:
        raise PublicKeyError(
            "This key can only sign: it has no encryption subkey, so messages cannot be "
            "encrypted to it. Ask the recipient for a key that can encrypt.",
            code="no_encryption_key",
        )
    if not live:
        if all(s.revoked for s in encryption):
            raise PublicKeyError(
                "The encryption subkey of this key has been revoked. Ask the recipient "
                "for their current key.",
                code="encryption_key_revoked",
            )
        latest = max((s.expires_at for s in encryption if s.expires_at), default=None)
        when = f" on {latest:%Y-%m-%d}" if latest else ""
        raise PublicKeyError(
            f"The encryption subkey of this key expired{when}. Ask the recipient for a "
            "renewed key.",
            code="encryption_key_expired",
        )
    # The authoritative check: Sequoia's standard policy (binding signatures valid,
    # no SHA-1 bindings, no too-short RSA, subkey alive now) must find a subkey.
    try:
        pysequoia.encrypt(_PROBE, recipients=[cert], armor=False)
    except RuntimeError:
        raise PublicKeyError(
            _WEAK_MESSAGE.format(what="No subkey of this key is acceptable for encryption"),
            code="weak_key",
        ) from None
    if not _user_id_emails(cert):
        raise PublicKeyError(
            "This key has no user id with an e-mail address, so it cannot be matched to "
            "the contact. Ask the recipient for a key whose user id contains their address.",
            code="no_user_id",
        )
    if _normalize_email(email) not in _user_id_emails(cert):
        raise PublicKeyError(
            "The key's user id does not match the contact's email address. Upload the key "
            "that belongs to this contact's address.",
            code="email_mismatch",
        )
    chosen = max(live, key=lambda s: s.created_at)
    expiries = [e for e in (expires, chosen.expires_at) if e is not None]
    return PublicKeyInfo(
        fingerprint=cert.fingerprint.upper(),
        version=version,
        algorithm=chosen.algorithm,
        primary_algorithm=primary_algorithm,
        created_at=created_at,
        expires_at=min(expiries) if expiries else None,
        armored=str(cert),
    )


def key_usable(data: str | bytes, *, email: str, now: dt.datetime | None = None) -> bool:
    """True when :func:`validate_public_key` would accept ``data`` for ``email`` now."""
    try:
        validate_public_key(data, email=email, now=now)
    except PublicKeyError:
        return False
    return True


def load_public_key(data: str | bytes) -> PublicKey:
    """Parse a stored (already validated) key for encryption."""
    return PublicKey(_parse_single(data))


def load_signing_key(data: str | bytes, *, passphrase: str | None = None) -> SigningKey:
    """Parse the organization's ASCII-armored OpenPGP secret key for signing.

    Raises :class:`SigningKeyError` when it is not a secret key, has no usable signing
    (sub)key or the passphrase is wrong.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        tsk = pysequoia.Tsk.from_bytes(raw)
    except (RuntimeError, ValueError):
        raise SigningKeyError(
            "The signing key is not a readable OpenPGP secret key (ASCII-armored "
            "'PRIVATE KEY BLOCK').",
            code="parse",
        ) from None
    try:
        signing = SigningKey(tsk, passphrase)
        pysequoia.sign(signing.signer, _PROBE, armor=False)
    except (RuntimeError, ValueError):
        raise SigningKeyError(
            "The signing key cannot sign: it has no valid signing subkey, it has expired, "
            "or the passphrase is wrong.",
            code="cannot_sign",
        ) from None
    return signing


# --- encryption ------------------------------------------------------------------------


def encrypt_message(
    message: bytes | str | Message,
    public_key: PublicKey | str | bytes,
    *,
    sign_with: SigningKey | None = None,
    outer_subject: str | None = None,
) -> bytes:
    """Wrap ``message`` in an RFC 3156 ``multipart/encrypted`` entity for ``public_key``.

    ``message`` is a complete rendered message (bytes or ``email.message.Message``).
    Its ``Content-*`` fields and body are encrypted (and signed when ``sign_with`` is
    given, in the combined sign-and-encrypt form of RFC 3156 §6.2); the other header
    fields (From, To, Date, Message-ID, List-Unsubscribe, ...) stay outside. When
    ``outer_subject`` is given it replaces the visible Subject — pass a generic one for
    a PHI-bearing template — and the real header fields travel inside as protected
    headers. Returns CRLF-terminated bytes ready for DKIM signing and SMTP.
    Raises :class:`EncryptionError` when the key has no usable encryption subkey.
    """
    key = public_key if isinstance(public_key, PublicKey) else load_public_key(public_key)
    parts = mime.split(message)
    inner = mime.inner_entity(parts, protect_headers=outer_subject is not None)
    try:
        armored = pysequoia.encrypt(
            inner,
            recipients=[key.cert],
            signer=sign_with.signer if sign_with is not None else None,
            armor=True,
        )
    except RuntimeError:
        raise EncryptionError(
            "The recipient's OpenPGP key has no subkey usable for encryption now "
            "(it may have expired since it was uploaded)."
        ) from None
    boundary = mime.new_boundary()
    crlf = mime.CRLF
    body = b"".join(
        [
            b"This is an OpenPGP/MIME encrypted message (RFC 3156)." + crlf,
            crlf,
            f"--{boundary}".encode() + crlf,
            b"Content-Type: application/pgp-encrypted" + crlf,
            b"Content-Description: PGP/MIME version identification" + crlf,
            crlf,
            b"Version: 1" + crlf,
            crlf,
            f"--{boundary}".encode() + crlf,
            b'Content-Type: application/octet-stream; name="encrypted.asc"' + crlf,
            b"Content-Description: OpenPGP encrypted message" + crlf,
            b'Content-Disposition: inline; filename="encrypted.asc"' + crlf,
            crlf,
            mime.canonical_bytes(armored).rstrip(crlf) + crlf,
            crlf,
            f"--{boundary}--".encode() + crlf,
        ]
    )
    content_type = (
        b"Content-Type: multipart/encrypted;"
        + crlf
        + b' protocol="application/pgp-encrypted";'
        + crlf
        + f' boundary="{boundary}"'.encode()
        + crlf
    )
    return mime.outer_header_block(parts, subject=outer_subject) + content_type + crlf + body


# --- internals -------------------------------------------------------------------------


def _parse_single(data: str | bytes) -> pysequoia.Cert:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    stripped = raw.strip()
    if stripped.startswith(b"-----"):
        raw = stripped  # armored; binary keys keep every byte (whitespace values included)
    if not stripped:
        raise PublicKeyError(
            "The key is empty. Paste or upload an OpenPGP public key.", code="empty"
        )
    if len(raw) > MAX_KEY_BYTES:
        raise PublicKeyError(
            "The key file is too large to be a single public key (limit 256 KB). Export "
            "only the recipient's key, without signatures from other keys if needed.",
            code="too_large",
        )
    if b"PRIVATE KEY BLOCK" in raw:
        raise PublicKeyError(
            "This is a private (secret) key. Never upload private keys: ask the recipient "
            "for their public key ('PUBLIC KEY BLOCK').",
            code="secret_key",
        )
    try:
        certs = pysequoia.Cert.split_bytes(raw)
    except (RuntimeError, ValueError):
        certs = []
    if not certs:
        raise PublicKeyError(
            "This is not a readable OpenPGP public key. Paste the whole ASCII-armored block, "
            "from '-----BEGIN PGP PUBLIC KEY BLOCK-----' to the END line.",
            code="parse",
        )
    if len(certs) > 1:
        raise PublicKeyError(
            f"The upload contains {len(certs)} keys. Upload only the recipient's own key.",
            code="several_keys",
        )
    if _has_secret_material(raw):
        raise PublicKeyError(
            "This is a private (secret) key. Never upload private keys: ask the recipient "
            "for their public key ('PUBLIC KEY BLOCK').",
            code="secret_key",
        )
    return certs[0]


def _has_secret_material(raw: bytes) -> bool:
    try:
        packets = pgp_packet.PacketPile.from_bytes(raw)
    except (RuntimeError, ValueError):
        return False
    return any(p.tag in (_Tag.SecretKey, _Tag.SecretSubkey) for p in packets)


def _user_id_emails(cert: pysequoia.Cert) -> set[str]:
    emails: set[str] = set()
    try:
        user_ids = cert.user_ids
    except RuntimeError:
        return emails
    for user_id in user_ids:
        text = str(user_id)
        _name, address = parseaddr(text)
        if "@" not in address and "@" in text and "<" not in text:
            address = text  # a bare address as the whole user id
        if "@" in address:
            emails.add(_normalize_email(address))
    return emails


def _normalize_email(address: str) -> str:
    return address.strip().lower()


def _describe(cert: pysequoia.Cert) -> tuple[str, dt.datetime, int, list[_Subkey]]:
    """Primary algorithm, creation time, version and subkeys, read from the packets.

    Used for metadata and precise error messages; whether a subkey is really usable is
    decided by Sequoia's policy in :func:`validate_public_key`.
    """
    primary_algorithm = "unknown"
    created_at = dt.datetime.now(dt.UTC)
    version = 4
    primary_flags: pgp_packet.KeyFlags | None = None
    subkeys: list[_Subkey] = []
    current: dict[str, object] | None = None

    def close() -> None:
        if current is None:
            return
        created = current["created"]
        assert isinstance(created, dt.datetime)
        period = current["period"]
        subkeys.append(
            _Subkey(
                algorithm=str(current["algorithm"]),
                created_at=created,
                expires_at=created + period if isinstance(period, dt.timedelta) else None,
                can_encrypt=bool(current["encrypt"]),
                revoked=bool(current["revoked"]),
            )
        )

    for pkt in pgp_packet.PacketPile.from_bytes(bytes(cert)):
        tag = pkt.tag
        if tag == _Tag.PublicKey:
            primary_algorithm = _algorithm_name(pkt)
            created_at = pkt.key_created or created_at
            version = pkt.body[0] if pkt.body else 4
        elif tag == _Tag.PublicSubkey:
            close()
            current = {
                "algorithm": _algorithm_name(pkt),
                "created": pkt.key_created or created_at,
                "period": None,
                "encrypt": False,
                "revoked": False,
            }
        elif tag == _Tag.Signature:
            signature_type = pkt.signature_type
            if current is None:
                if pkt.key_flags is not None and primary_flags is None:
                    primary_flags = pkt.key_flags
                continue
            if signature_type == pgp_packet.SignatureType.SubkeyBinding:
                flags = pkt.key_flags
                if flags is not None and (flags.transport_encryption or flags.storage_encryption):
                    current["encrypt"] = True
                current["period"] = pkt.key_validity_period
            elif signature_type == pgp_packet.SignatureType.SubkeyRevocation:
                current["revoked"] = True
    close()
    if primary_flags is not None and (
        primary_flags.transport_encryption or primary_flags.storage_encryption
    ):
        # An old-style key that encrypts with its primary key.
        subkeys.append(
            _Subkey(
                algorithm=primary_algorithm,
                created_at=created_at,
                expires_at=cert.expiration,
                can_encrypt=True,
                revoked=False,
            )
        )
    return primary_algorithm, created_at, version, subkeys


def _algorithm_name(pkt: pgp_packet.Packet) -> str:
    algorithm = pkt.key_algorithm
    name = _ALGORITHM_NAMES.get(int(algorithm), str(algorithm)) if algorithm else "unknown"
    body = pkt.body
    # Key packet: version (1), creation time (4), [v6: key material length (4)], algo (1).
    offset = 6 if body[:1] == b"\x04" else 10
    material = body[offset:]
    if name in {"RSA", "DSA", "ElGamal"} and len(material) >= 2:
        return f"{name} {int.from_bytes(material[:2], 'big')}"
    if name in {"ECDH", "ECDSA", "EdDSA"} and material:
        oid = material[1 : 1 + material[0]].hex()
        curve = _CURVES.get(oid)
        if curve:
            return f"{name} {curve}"
    return name
