"""Signed opaque tokens of tracking URLs (``/t/o/<token>``, ``/t/c/<token>``).

A token is ``base64url(varint(message id) | varint(campaign id) [| varint(link index)]
| HMAC-SHA256(key, purpose | those bytes)[:8])`` without padding: 19 characters for an
open and 20 for a click in a database of ten million messages (the unsubscribe token
is 29), so ``https://host/t/c/<token>`` stays short. It names a
message, its campaign and a link position — never an address or anything about the
person — and cannot be made or altered without the key: the 64-bit MAC is checked in
constant time, and open and click tokens use different keys, so one cannot stand in
for the other. Keys derive from ``SECRET_KEY``; tokens made under a key listed in
``SECRET_KEY_FALLBACKS`` keep working after a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from functools import cache

from django.conf import settings

from luxmail import crypto

OPEN = "open"
CLICK = "click"
_MAC_BYTES = 8
_MAX_TOKEN_LENGTH = 40  # far above any real token; longer input is refused unread


class InvalidToken(Exception):
    """Malformed, forged or altered token (the response stays neutral)."""


@dataclass(frozen=True, slots=True)
class TrackingToken:
    message_id: int
    campaign_id: int
    link_index: int | None = None  # clicks only


@cache
def _key(purpose: str, secret: str) -> bytes:
    return hashlib.sha256(f"luxmail.reporting.tracking|{purpose}|{secret}".encode()).digest()


@cache
def _keyed(purpose: str, secret: str) -> crypto.KeyedSha256:
    # The key's blocks hashed once, not again for every token (the send path makes one
    # open and one click token per tracked link of every message).
    return crypto.KeyedSha256(_key(purpose, secret))


def _mac(purpose: str, secret: str, body: bytes) -> bytes:
    return _keyed(purpose, secret).digest(body)[:_MAC_BYTES]


def _varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("ids are not negative")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varints(data: bytes) -> list[int]:
    values: list[int] = []
    value = shift = 0
    for position, byte in enumerate(data):
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                raise InvalidToken("id too large")
            continue
        if shift and byte == 0 and position:
            raise InvalidToken("non-canonical id")  # one encoding per value
        values.append(value)
        value = shift = 0
    if shift:
        raise InvalidToken("truncated id")
    return values


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _token(purpose: str, body: bytes) -> str:
    mac = _mac(purpose, settings.SECRET_KEY, body)
    # base64.urlsafe_b64encode without its Python wrapper (per token of every message).
    return binascii.b2a_base64(body + mac, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def make(purpose: str, *, message_id: int, campaign_id: int, link_index: int | None = None) -> str:
    body = _varint(message_id) + _varint(campaign_id)
    if purpose == CLICK:
        if link_index is None:
            raise ValueError("a click token needs a link index")
        body += _varint(link_index)
    return _token(purpose, body)


class MessageTokens:
    """The open and click tokens of one message, as :func:`make` makes them (tested),
    with the ids encoded once for all of them (a message has one per tracked link)."""

    __slots__ = ("_body",)

    def __init__(self, *, message_id: int, campaign_id: int):
        self._body = _varint(message_id) + _varint(campaign_id)

    def open(self) -> str:
        return _token(OPEN, self._body)

    def click(self, link_index: int) -> str:
        return _token(CLICK, self._body + _varint(link_index))


def read(purpose: str, token: str) -> TrackingToken:
    """The ids in ``token``; raises :class:`InvalidToken`."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidToken("bad length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        raise InvalidToken("non-canonical encoding")
    body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(body) < 2:
        raise InvalidToken("too short")
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(hmac.compare_digest(mac, _mac(purpose, secret, body)) for secret in secrets):
        raise InvalidToken("signature mismatch")
    values = _read_varints(body)
    expected = 3 if purpose == CLICK else 2
    if len(values) != expected:
        raise InvalidToken("wrong shape")
    return TrackingToken(values[0], values[1], values[2] if purpose == CLICK else None)
