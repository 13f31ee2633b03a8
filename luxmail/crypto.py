"""Field-level encryption and blind indexes for PHI (DESIGN.md §4, docs/security.md).

Ciphertext envelope (bytes)::

    version (1 B) | key id length (1 B) | key id (ASCII) | nonce (12 B) | AES-256-GCM ct+tag

The associated data binds every value to its model, field and row UUID, so a value
copied into another row or column fails authentication instead of decrypting.

Keys come only from ``LUXMAIL_ENCRYPTION_KEYS`` (``id:base64key`` pairs, comma
separated; the first one encrypts, all of them decrypt) and ``LUXMAIL_BLIND_INDEX_KEY``.

Reading PHI goes through :func:`phi_access`, which writes one audit event for the
operation and returns the :class:`Access` that :func:`reveal` demands; no other code
can construct one (private constructor token, and ``reveal`` accepts only the instances
this module issued). Nothing else in the code base decrypts PHI;
``tests/test_security_rules.py`` keeps it that way, following every alias of this module.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import unicodedata
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

from luxmail import audit
from luxmail.actors import Actor

if TYPE_CHECKING:
    from django.http import HttpRequest

ENVELOPE_VERSION = 1
NONCE_BYTES = 12
Kind = Literal["text", "json", "date", "bytes"]


class CryptoError(Exception):
    """Base class: a value could not be encrypted or decrypted. Never carries plaintext."""


class DecryptionError(CryptoError):
    """Ciphertext failed authentication: tampered, truncated, or moved to another row."""


class MissingKeyError(CryptoError):
    """The envelope names a key id that is not in the key ring."""


class AccessDenied(CryptoError):
    """PHI was read without an audited :class:`Access`."""


# --- key ring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRing:
    primary_id: str
    ciphers: dict[str, AESGCM]

    @classmethod
    def parse(cls, value: str) -> KeyRing:
        ciphers: dict[str, AESGCM] = {}
        order: list[str] = []
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id or not key_id.isascii() or len(key_id) > 32:
                raise ImproperlyConfigured(
                    "LUXMAIL_ENCRYPTION_KEYS must be comma-separated 'id:base64key' pairs "
                    "with short ASCII ids."
                )
            try:
                raw = base64.b64decode(encoded.strip(), validate=True)
            except binascii.Error:
                raise ImproperlyConfigured(
                    f"LUXMAIL_ENCRYPTION_KEYS: key {key_id!r} is not valid base64."
                ) from None
            if len(raw) != 32:
                raise ImproperlyConfigured(
                    f"LUXMAIL_ENCRYPTION_KEYS: key {key_id!r} must be 32 bytes (AES-256), "
                    f"got {len(raw)}."
                )
            if key_id in ciphers:
                raise ImproperlyConfigured(f"LUXMAIL_ENCRYPTION_KEYS: key id {key_id!r} repeats.")
            ciphers[key_id] = AESGCM(raw)
            order.append(key_id)
        if not order:
            raise ImproperlyConfigured("LUXMAIL_ENCRYPTION_KEYS holds no key.")
        return cls(primary_id=order[0], ciphers=ciphers)


@cache
def keyring() -> KeyRing:
    return KeyRing.parse(settings.LUXMAIL_ENCRYPTION_KEYS)


@cache
def _blind_master() -> bytes:
    try:
        raw = base64.b64decode(settings.LUXMAIL_BLIND_INDEX_KEY, validate=True)
    except binascii.Error:
        raise ImproperlyConfigured("LUXMAIL_BLIND_INDEX_KEY is not valid base64.") from None
    if len(raw) < 32:
        raise ImproperlyConfigured("LUXMAIL_BLIND_INDEX_KEY must hold at least 32 bytes.")
    return raw


@cache
def _blind_field_key(field: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"luxmail-blind-index-v1", info=field.encode()
    ).derive(_blind_master())


@receiver(setting_changed)
def _reset_keys(*, setting: str, **kwargs: Any) -> None:
    if setting in {"LUXMAIL_ENCRYPTION_KEYS", "LUXMAIL_BLIND_INDEX_KEY"}:
        keyring.cache_clear()
        _blind_master.cache_clear()
        _blind_field_key.cache_clear()


def generate_key() -> str:
    """A new base64 AES-256 key for ``LUXMAIL_ENCRYPTION_KEYS`` / the blind-index key."""
    return base64.b64encode(os.urandom(32)).decode()


# --- envelope -----------------------------------------------------------------------------


def associated_data(label: str, field: str, row_id: uuid.UUID | str) -> bytes:
    return f"luxmail/v{ENVELOPE_VERSION}|{label}|{field}|{row_id}".encode()


def _encrypt(plaintext: bytes, aad: bytes) -> bytes:
    ring = keyring()
    key_id = ring.primary_id.encode()
    nonce = os.urandom(NONCE_BYTES)
    ct = ring.ciphers[ring.primary_id].encrypt(nonce, plaintext, aad)
    return bytes([ENVELOPE_VERSION, len(key_id)]) + key_id + nonce + ct


def envelope_key_id(envelope: bytes) -> str:
    if len(envelope) < 2 or envelope[0] != ENVELOPE_VERSION:
        raise DecryptionError("Encrypted value has an unknown format version.")
    length = envelope[1]
    if len(envelope) < 2 + length + NONCE_BYTES + 16:
        raise DecryptionError("Encrypted value is truncated.")
    return envelope[2 : 2 + length].decode("ascii", "replace")


def _decrypt(envelope: bytes, aad: bytes) -> bytes:
    # Private: plaintext leaves this module only through reveal() and an issued Access.
    key_id = envelope_key_id(envelope)
    cipher = keyring().ciphers.get(key_id)
    if cipher is None:
        raise MissingKeyError(
            f"Encrypted value uses key {key_id!r}, which is not in LUXMAIL_ENCRYPTION_KEYS."
        )
    start = 2 + envelope[1]
    nonce = envelope[start : start + NONCE_BYTES]
    try:
        return cipher.decrypt(nonce, envelope[start + NONCE_BYTES :], aad)
    except InvalidTag:
        raise DecryptionError(
            "Encrypted value failed authentication: it was altered or belongs to another "
            "row or field."
        ) from None


def reencrypt(envelope: bytes, aad: bytes) -> bytes:
    """Re-encrypt under the primary key without handing the plaintext to the caller."""
    return _encrypt(_decrypt(envelope, aad), aad)


def _encode(kind: Kind, value: Any) -> bytes:
    if kind == "text":
        if not isinstance(value, str):
            raise TypeError(f"Encrypted text fields take str, not {type(value).__name__}.")
        return value.encode()
    if kind == "json":
        if type(value) is list and all(type(item) is str for item in value):
            return _json_strings(tuple(value))  # codes, medications: few distinct lists
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    if kind == "date":
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise TypeError(f"Encrypted date fields take date, not {type(value).__name__}.")
        return value.isoformat().encode()
    if not isinstance(value, bytes):
        raise TypeError(f"Encrypted bytes fields take bytes, not {type(value).__name__}.")
    return value


@lru_cache(maxsize=16_384)
def _json_strings(items: tuple[str, ...]) -> bytes:
    """The JSON of a list of strings, as :func:`_encode` writes it (json.dumps with
    options builds an encoder each call: the import seals two such lists a row)."""
    return json.dumps(list(items), separators=(",", ":"), sort_keys=True).encode()


def _decode(kind: Kind, raw: bytes) -> Any:
    if kind == "text":
        return raw.decode()
    if kind == "json":
        return json.loads(raw)
    if kind == "date":
        return dt.date.fromisoformat(raw.decode())
    return raw


# --- model field --------------------------------------------------------------------------


class EncryptedField(models.BinaryField):
    """A column holding an AES-GCM envelope, never plaintext.

    The model attribute is the envelope (``bytes``) or ``None``. Write with
    :func:`seal`; read with :func:`reveal` and an :class:`Access`. Assigning anything
    but an envelope fails at save time, so plaintext cannot reach the database by
    accident. The model must have a ``uuid`` attribute (bound into the associated data).
    """

    def __init__(self, *args: Any, kind: Kind = "text", phi: bool = True, **kwargs: Any):
        self.kind: Kind = kind
        self.phi = phi
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["kind"] = self.kind
        kwargs["phi"] = self.phi
        kwargs.pop("null", None)
        kwargs.pop("blank", None)
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        return None if value is None else bytes(value)

    def to_python(self, value: Any) -> Any:
        return None if value is None else bytes(value) if isinstance(value, memoryview) else value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, memoryview):
            value = bytes(value)
        if not isinstance(value, bytes) or not value or value[0] != ENVELOPE_VERSION:
            raise TypeError(
                f"{self.model._meta.label}.{self.name} holds a plaintext value; "
                "assign it with luxmail.crypto.seal()."
            )
        return value

    def value_to_string(self, obj: models.Model) -> str:
        # Serialization (dumpdata) keeps the envelope, base64 encoded, never plaintext.
        value = self.value_from_object(obj)
        return "" if value is None else base64.b64encode(value).decode()


def encrypted_fields(model: type[models.Model]) -> list[EncryptedField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]


def _field(model: type[models.Model], name: str) -> EncryptedField:
    field = model._meta.get_field(name)
    if not isinstance(field, EncryptedField):
        raise TypeError(f"{model._meta.label}.{name} is not an EncryptedField.")
    return field


def field_aad(model: type[models.Model], name: str, row_id: uuid.UUID | str) -> bytes:
    return associated_data(model._meta.label_lower, name, row_id)


def sealed(
    model: type[models.Model], name: str, row_id: uuid.UUID | str, value: Any
) -> bytes | None:
    """The envelope for ``value`` in ``model.name`` of the row ``row_id`` (None stays None)."""
    if value is None:
        return None
    field = _field(model, name)
    return _encrypt(_encode(field.kind, value), field_aad(model, name, row_id))


def sealed_row(
    model: type[models.Model], row_id: uuid.UUID | str, values: Mapping[str, Any]
) -> dict[str, bytes | None]:
    """:func:`sealed` for several fields of one row, at a fraction of the per-field cost.

    The same envelopes (the same format, key, AAD per field, a fresh random nonce per
    value): the primary key, envelope header and the row part of the AAD are resolved
    once per row and the nonces drawn from the OS in one call. The importer seals ~15
    fields a row this way (docs/performance.md "Import").
    """
    ring = keyring()
    key_id = ring.primary_id.encode()
    cipher = ring.ciphers[ring.primary_id]
    header = bytes([ENVELOPE_VERSION, len(key_id)]) + key_id
    tail = str(row_id).encode()
    present = [name for name, value in values.items() if value is not None]
    nonces = os.urandom(NONCE_BYTES * len(present))
    out: dict[str, bytes | None] = dict.fromkeys(values)
    for index, name in enumerate(present):
        kind, head = _sealing(model, name)
        nonce = nonces[index * NONCE_BYTES : (index + 1) * NONCE_BYTES]
        value = values[name]
        plaintext = (
            value.encode() if kind == "text" and type(value) is str else _encode(kind, value)
        )
        out[name] = header + nonce + cipher.encrypt(nonce, plaintext, head + tail)
    return out


@cache
def _sealing(model: type[models.Model], name: str) -> tuple[Kind, bytes]:
    """The kind of ``model.name`` and the start of its associated data (``associated_data``
    up to the row id), resolved once per field rather than once per value."""
    return _field(model, name).kind, (
        f"luxmail/v{ENVELOPE_VERSION}|{model._meta.label_lower}|{name}|".encode()
    )


def seal(instance: models.Model, name: str, value: Any) -> None:
    """Encrypt ``value`` into ``instance.name``, bound to the instance's UUID."""
    setattr(instance, name, sealed(type(instance), name, instance.uuid, value))  # type: ignore[attr-defined]


# --- audited reads ------------------------------------------------------------------------


_ISSUE = object()  # module-private: only this module can call Access(...)
# Every Access this process handed out, by identity: reveal() accepts nothing else, so a
# copy, a ``dataclasses.replace`` or an ``object.__new__`` forgery is refused too.
_ISSUED_PHI: weakref.WeakSet[Access] = weakref.WeakSet()
_ISSUED_SECRET: weakref.WeakSet[Access] = weakref.WeakSet()


class Access:
    """Proof that a read was authorized and audited; required by :func:`reveal`.

    Only :func:`phi_access` (which writes the ``phi.access`` audit event first) and
    :func:`secret_access` (non-PHI secrets only) create one; calling ``Access(...)``
    anywhere else raises :class:`AccessDenied`. Instances are immutable, compared by
    identity, and cannot be copied or pickled.
    """

    __slots__ = ("__weakref__", "actor_id", "audit_event_id", "phi", "purpose")

    purpose: str
    actor_id: int | None
    audit_event_id: int | None
    phi: bool

    def __init__(self, *args: Any, **fields: Any) -> None:
        if len(args) != 1 or args[0] is not _ISSUE:
            raise AccessDenied(
                "crypto.Access cannot be constructed directly; use crypto.phi_access()."
            )
        phi = bool(fields["phi"])
        object.__setattr__(self, "purpose", str(fields["purpose"]))
        object.__setattr__(self, "actor_id", fields["actor_id"])
        object.__setattr__(self, "audit_event_id", fields["audit_event_id"])
        object.__setattr__(self, "phi", phi)
        (_ISSUED_PHI if phi else _ISSUED_SECRET).add(self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("crypto.Access is immutable.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("crypto.Access is immutable.")

    def __copy__(self) -> Access:
        raise AccessDenied("crypto.Access cannot be copied; ask phi_access() for another.")

    def __deepcopy__(self, memo: Any) -> Access:
        return self.__copy__()

    def __reduce__(self) -> Any:
        raise AccessDenied("crypto.Access cannot be pickled or sent to another process.")

    def __repr__(self) -> str:
        return (
            f"Access(purpose={self.purpose!r}, actor_id={self.actor_id!r}, "
            f"audit_event_id={self.audit_event_id!r}, phi={self.phi!r})"
        )


def phi_access(
    *,
    actor: Actor,
    purpose: str,
    target: models.Model | None = None,
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> Access:
    """Authorize a PHI read for ``purpose`` and write one ``phi.access`` audit event.

    ``actor`` is the user on whose behalf PHI is read, or ``None`` for the system
    (e.g. the send pipeline rendering a campaign). ``details`` must not contain PHI.
    This is the only way to obtain an :class:`Access` that :func:`reveal` accepts for PHI.
    """

    event = audit.record(
        "phi.access",
        actor=actor,
        target=target,
        phi=True,
        request=request,
        details={"purpose": purpose, **(details or {})},
    )
    actor_id = getattr(actor, "pk", None)
    return Access(_ISSUE, purpose=purpose, actor_id=actor_id, audit_event_id=event.pk, phi=True)


def secret_access(purpose: str) -> Access:
    """Access for non-PHI secrets (DKIM keys, relay passwords); refused for PHI fields."""
    return Access(_ISSUE, purpose=purpose, actor_id=None, audit_event_id=None, phi=False)


def _check_access(access: Access, *, phi: bool, what: str) -> None:
    """``access`` must be one this module issued, and a PHI one for a PHI field."""
    issued = type(access) is Access  # a subclass could fake identity and equality
    if issued and access in _ISSUED_PHI:
        return
    if issued and access in _ISSUED_SECRET:
        if phi:
            raise AccessDenied(f"{what} is PHI; read it with phi_access().")
        return
    raise AccessDenied(f"{what}: the access was not issued by crypto.phi_access().")


def reveal(instance: models.Model, name: str, *, access: Access) -> Any:
    """Decrypt ``instance.name``; raises :class:`CryptoError`, never returns ciphertext."""
    model = type(instance)
    field = _field(model, name)
    _check_access(access, phi=field.phi, what=f"{model._meta.label}.{name}")
    envelope = getattr(instance, name)
    if envelope is None:
        return None
    raw = _decrypt(envelope, field_aad(model, name, instance.uuid))  # type: ignore[attr-defined]
    return _decode(field.kind, raw)


def reveal_many(instance: models.Model, names: Iterable[str], *, access: Access) -> dict[str, Any]:
    return {name: reveal(instance, name, access=access) for name in names}


def revealed_rows(
    model: type[models.Model],
    names: Sequence[str],
    rows: Iterable[tuple[uuid.UUID | str, Sequence[bytes | None]]],
    *,
    access: Access,
) -> list[dict[str, Any]]:
    """:func:`reveal_many` for many rows read as values (``values_list``: the row's
    ``uuid`` and its envelopes of ``names``, in that order) at a fraction of the
    per-field cost: the send path decrypts a few fields of hundreds of contacts per
    batch, and making model instances cost more than decrypting them. The access is
    checked and the fields and associated data resolved once — the same checks, the
    same associated data, the same errors as :func:`reveal`."""
    fields = [(name, _field(model, name)) for name in names]
    for name, field in fields:
        _check_access(access, phi=field.phi, what=f"{model._meta.label}.{name}")
    heads = [
        (f"luxmail/v{ENVELOPE_VERSION}|{model._meta.label_lower}|{name}|", field.kind)
        for name, field in fields
    ]
    out: list[dict[str, Any]] = []
    for row_uuid, envelopes in rows:
        tail = str(row_uuid)
        out.append(
            {
                name: None
                if envelope is None
                else _decode(kind, _decrypt(envelope, (head + tail).encode()))
                for name, (head, kind), envelope in zip(names, heads, envelopes, strict=True)
            }
        )
    return out


# --- blind indexes ------------------------------------------------------------------------


def normalize_text(value: str) -> str:
    """Unicode NFKC, case-folded, trimmed, inner white space collapsed."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def blind_index(field: str, value: str) -> bytes:
    """HMAC-SHA256 of the normalized value under a key derived for ``field`` (32 bytes)."""
    key = _blind_field_key(field)
    return hmac.new(key, normalize_text(value).encode(), hashlib.sha256).digest()


def blind_token(field: str, value: str) -> int:
    """The first 64 bits of :func:`blind_index` as a signed integer.

    Segment tokens are stored as ``bigint`` so the token index stays small and fast;
    within one field's bounded domain a 64-bit collision is practically impossible.
    """
    return int.from_bytes(blind_index(field, value)[:8], "big", signed=True)


# --- keyed MACs of the send path -------------------------------------------------------


class KeyedSha256:
    """HMAC-SHA256 under one key (RFC 2104), the key's inner and outer blocks hashed
    once: the send path makes six MACs per message (unsubscribe, return path, tracking
    links and pixel) and ``hmac.HMAC.copy`` costs twice this per MAC in Python layers.
    Equal to ``hmac.new(key, data, sha256).digest()`` (tested)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
