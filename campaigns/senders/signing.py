"""DKIM keys and signatures (RFC 6376, RFC 8463 for Ed25519).

Keys are generated in the app; the private key is stored encrypted
(``SenderIdentity.dkim_private_key``, ``EncryptedField(phi=False)``) and read through
``crypto.secret_access``. Signing uses ``relaxed`` header and ``simple`` body
canonicalization by default (``c=relaxed/simple``; our bodies are quoted-printable with
short lines, which relays do not rewrap, and ``simple`` costs nothing per message where
``relaxed`` body canonicalization costs regex passes over every body);
``relaxed/relaxed``, ``simple/simple`` and ``simple/relaxed`` are available. The
canonicalization is written here, and the ``cryptography`` package makes the signature
itself: dkimpy's pure-Python RSA costs tens of milliseconds per message, OpenSSL a
fraction of one. The send pipeline hands :meth:`Signer.header` the header fields it
built, so nothing is parsed back; :meth:`Signer.sign` takes finished bytes (S/MIME and
PGP messages). The tests prove every form with ``dkim.verify``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"

# Signed header fields (in this order). List-Unsubscribe(-Post) must be signed for
# RFC 8058 one-click unsubscribe to be honoured by mailbox providers.
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "feedback-id",
)

_WSP_RUN = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
_TRAILING_EMPTY = re.compile(rb"(\r\n)+$")
_WSP_RUN_TEXT = re.compile(r"[ \t]+")
_FOLD_TEXT = re.compile(r"\r\n(?=[ \t])")
# Header fields whose value is the same in every message of a campaign: their
# canonical form is remembered per signer (``Signer._memo``).
_SHARED_FIELDS = frozenset(
    {"from", "reply-to", "list-unsubscribe-post", "mime-version", "content-type", "feedback-id"}
)
_MEMO_SIZE = 64


@dataclass(frozen=True)
class GeneratedKey:
    algorithm: str
    private_pem: bytes
    public_b64: str


def generate_key(algorithm: str = RSA) -> GeneratedKey:
    """A new key pair: RSA-2048 or Ed25519."""
    if algorithm == RSA:
        private_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private_rsa.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = private_rsa.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif algorithm == ED25519:
        private_ed = ed25519.Ed25519PrivateKey.generate()
        pem = private_ed.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = private_ed.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        raise ValueError(f"Unknown DKIM algorithm {algorithm!r}")
    return GeneratedKey(algorithm, pem, base64.b64encode(public).decode())


def dns_record_value(algorithm: str, public_b64: str) -> str:
    """The TXT record content to publish at ``<selector>._domainkey.<domain>``."""
    key_type = "ed25519" if algorithm == ED25519 else "rsa"
    return f"v=DKIM1; k={key_type}; p={public_b64}"


def dns_record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def canonical_body(body: bytes) -> bytes:
    """Relaxed body canonicalization (RFC 6376 §3.4.4). ``body`` uses CRLF line ends."""
    if not body:
        return b""
    body = _WSP_RUN.sub(b" ", body)
    body = _TRAILING_WSP.sub(b"\r\n", body)
    if not body.endswith(b"\r\n"):
        body = body.rstrip(b" \t") + b"\r\n"
    body = _TRAILING_EMPTY.sub(b"\r\n", body)
    return b"" if body == b"\r\n" else body


def simple_body(body: bytes) -> bytes:
    """Simple body canonicalization (RFC 6376 §3.4.3): trailing empty lines removed."""
    stripped = body.rstrip(b"\r\n")
    while body.endswith(b"\r\n\r\n"):
        body = body[:-2]
    if not stripped:
        return b"\r\n"
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def canonical_header(name: bytes, value: bytes) -> bytes:
    """Relaxed header canonicalization (RFC 6376 §3.4.2), without the trailing CRLF."""
    if b"\r" not in value and b"\t" not in value and b"  " not in value:
        # The common case (our own single-line values): nothing to unfold or collapse.
        return name.strip().lower() + b":" + value.strip(b" ")
    value = _FOLD.sub(b"", value)
    value = _WSP_RUN.sub(b" ", value).strip(b" \t\r\n")
    return name.strip().lower() + b":" + value


def canonical_header_text(name: str, value: str) -> str:
    """:func:`canonical_header` on text (the same result, encoded): the send pipeline's
    header fields are text, and encoding the canonical form once is cheaper than
    encoding every field first."""
    if "\r" not in value and "\t" not in value and "  " not in value:
        return name.strip().lower() + ":" + value.strip(" ")
    value = _FOLD_TEXT.sub("", value)
    value = _WSP_RUN_TEXT.sub(" ", value).strip(" \t\r\n")
    return name.strip().lower() + ":" + value


def simple_header_text(name: str, value: str) -> str:
    return name + ":" + value


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Header fields as (name, raw value incl. folding) and the body, from CRLF bytes."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        head, body = message, b""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields, body


CANONICALIZATIONS = ("relaxed/simple", "relaxed/relaxed", "simple/simple", "simple/relaxed")


def simple_header(name: bytes, value: bytes) -> bytes:
    """Simple header canonicalization (RFC 6376 §3.4.1): the field unchanged."""
    return name + b":" + value


class Signer:
    """Signs messages for one domain/selector; load once per batch, sign per message.

    ``canonicalization`` is ``header/body`` (RFC 6376 §3.4): ``relaxed/simple`` by
    default, or ``relaxed/relaxed``, ``simple/simple``, ``simple/relaxed``.
    """

    def __init__(
        self,
        *,
        domain: str,
        selector: str,
        algorithm: str,
        private_pem: bytes,
        canonicalization: str = "relaxed/simple",
    ):
        if canonicalization not in CANONICALIZATIONS:
            raise ValueError(f"Unknown DKIM canonicalization {canonicalization!r}")
        self.domain = domain
        self.selector = selector
        self.algorithm = algorithm
        key = serialization.load_pem_private_key(private_pem, password=None)
        if algorithm == RSA and not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("The stored DKIM key is not an RSA key.")
        if algorithm == ED25519 and not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError("The stored DKIM key is not an Ed25519 key.")
        self._key = key
        header_c, body_c = canonicalization.split("/")
        self._header = canonical_header if header_c == "relaxed" else simple_header
        self._header_text = canonical_header_text if header_c == "relaxed" else simple_header_text
        # Per field-name sequence: the positions of the signed fields and their h= list.
        self._layouts: dict[tuple[str, ...], tuple[tuple[int, ...], str]] = {}
        # Canonical lines of the fields every message shares (From, Content-Type …).
        self._memo: dict[tuple[str, str], str] = {}
        self._body = canonical_body if body_c == "relaxed" else simple_body
        self._prefix = f"v=1; a={algorithm}; c={canonicalization}; d={domain}; s={selector}; "

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        assert isinstance(self._key, ed25519.Ed25519PrivateKey)
        return self._key.sign(hashlib.sha256(data).digest())

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """``message`` (CRLF) with a ``DKIM-Signature`` header field prepended."""
        fields, body = split_message(message)
        return self.header(fields, body, timestamp=timestamp) + message

    def _layout(self, names: tuple[str, ...]) -> tuple[tuple[int, ...], str]:
        present: dict[str, int] = {}
        for position, name in enumerate(names):
            # The last instance is signed first (RFC 6376 §5.4.2); we never repeat fields.
            present[name.strip().lower()] = position
        signed = [n for n in SIGNED_HEADERS if n in present]
        layout = (tuple(present[n] for n in signed), ":".join(signed))
        if len(self._layouts) < _MEMO_SIZE:
            self._layouts[names] = layout
        return layout

    def header_text(
        self, fields: Sequence[tuple[str, str]], body: bytes, *, timestamp: int | None = None
    ) -> bytes:
        """:meth:`header` for fields given as text (name, value after the colon), as
        :class:`campaigns.sending.mail.Built` holds them — the same signature field
        (tested), computed with less work per message: the signed fields' positions and
        ``h=`` list are found once per field layout, the canonical lines of the fields
        every message of a campaign shares are remembered, and nothing is encoded
        field by field."""
        names = tuple([name for name, _ in fields])
        layout = self._layouts.get(names) or self._layout(names)
        canonical = self._header_text
        memo = self._memo
        lines = []
        for position in layout[0]:
            field = fields[position]
            line = memo.get(field)
            if line is None:
                line = canonical(field[0], field[1]) + "\r\n"
                if field[0].lower() in _SHARED_FIELDS:
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    memo[field] = line
            lines.append(line)
        body_hash = binascii.b2a_base64(
            hashlib.sha256(self._body(body)).digest(), newline=False
        ).decode()
        stamp = int(time.time()) if timestamp is None else timestamp
        header_value = f" {self._prefix}t={stamp}; h={layout[1]}; bh={body_hash}; b="
        lines.append(canonical("DKIM-Signature", header_value))
        signature = binascii.b2a_base64(self._sign("".join(lines).encode()), newline=False).decode()
        folded = "\r\n\t".join([signature[i : i + 72] for i in range(0, len(signature), 72)])
        return f"DKIM-Signature:{header_value}\r\n\t{folded}\r\n".encode()

    def header(
        self, fields: list[tuple[bytes, bytes]], body: bytes, *, timestamp: int | None = None
    ) -> bytes:
        """The ``DKIM-Signature`` field (with its CRLF) for a message given as its header
        ``fields`` — (name, raw value after the colon, folding included) — and ``body``;
        the send pipeline builds both itself and so never parses its messages back."""
        body_hash = base64.b64encode(hashlib.sha256(self._body(body)).digest()).decode()
        present: dict[bytes, tuple[bytes, bytes]] = {}
        for name, value in fields:
            # The last instance is signed first (RFC 6376 §5.4.2); we never repeat fields.
            present[name.strip().lower()] = (name, value)
        names = [n for n in SIGNED_HEADERS if n.encode() in present]
        canonical = b"".join(self._header(*present[n.encode()]) + b"\r\n" for n in names)
        stamp = int(time.time()) if timestamp is None else timestamp
        header_value = f" {self._prefix}t={stamp}; h={':'.join(names)}; bh={body_hash}; b="
        to_sign = canonical + self._header(b"DKIM-Signature", header_value.encode())
        signature = base64.b64encode(self._sign(to_sign)).decode()
        folded = "\r\n\t".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return f"DKIM-Signature:{header_value}\r\n\t{folded}\r\n".encode()
