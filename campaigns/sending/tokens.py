"""Signed opaque tokens for unsubscribe links and VERP return paths.

A token is ``base32(message id (8 bytes) | HMAC-SHA256(key, purpose | id)[:10])``,
lower case without padding: 29 characters, safe in a URL path and in an e-mail local
part (which some relays lower-case). It carries a message id only — no e-mail
address, no PHI — and cannot be forged or altered without the key. Message id 0
stands for a test send (no recipient record).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from django.conf import settings

from luxmail import crypto

_MAC_BYTES = 10
_ID_BYTES = 8
_LENGTH = 29  # base32 of 18 bytes without padding


class InvalidToken(Exception):
    """The token is malformed or its signature does not match."""


@cache
def _key(purpose: str, secret: str) -> bytes:
    return hashlib.sha256(f"luxmail.campaigns.token|{purpose}|{secret}".encode()).digest()


@cache
def _keyed(purpose: str, secret: str) -> crypto.KeyedSha256:
    # The key's blocks hashed once, not again for every token.
    return crypto.KeyedSha256(_key(purpose, secret))


def _mac(purpose: str, raw_id: bytes) -> bytes:
    return _keyed(purpose, settings.SECRET_KEY).digest(raw_id)[:_MAC_BYTES]


_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


@cache
def _triples() -> list[str]:
    # Every 15-bit group as its three characters (32,768 short strings, ~2 MB: made
    # on first use, in the processes that send).
    return [a + b + c for a in _BASE32 for b in _BASE32 for c in _BASE32]


def _base32(raw: bytes) -> str:
    """Lower-case base32 of the 18 token bytes without padding, as
    ``base64.b32encode(raw).rstrip("=").lower()`` (tested) but a few times faster: the
    144 bits, padded to 150, are read fifteen bits (three characters) at a time — two
    tokens per message."""
    n = int.from_bytes(raw, "big") << 6
    t = _triples()
    return (
        t[n >> 135]
        + t[(n >> 120) & 32767]
        + t[(n >> 105) & 32767]
        + t[(n >> 90) & 32767]
        + t[(n >> 75) & 32767]
        + t[(n >> 60) & 32767]
        + t[(n >> 45) & 32767]
        + t[(n >> 30) & 32767]
        + t[(n >> 15) & 32767]
        + t[n & 32767]
    )[:_LENGTH]


def make(purpose: str, message_id: int) -> str:
    raw_id = message_id.to_bytes(_ID_BYTES, "big")
    return _base32(raw_id + _mac(purpose, raw_id))


def read(purpose: str, token: str) -> int:
    """The message id inside ``token``; raises :class:`InvalidToken`."""
    if len(token) != _LENGTH:
        raise InvalidToken("This link is incomplete or damaged.")
    try:
        raw = base64.b32decode(token.upper() + "===")
    except ValueError:
        raise InvalidToken("This link is incomplete or damaged.") from None
    raw_id, mac = raw[:_ID_BYTES], raw[_ID_BYTES:]
    if not hmac.compare_digest(mac, _mac(purpose, raw_id)):
        raise InvalidToken("This link is not valid.")
    return int.from_bytes(raw_id, "big")


UNSUBSCRIBE = "unsubscribe"
BOUNCE = "bounce"
# Issue 18: a sign-up's double opt-in link (submission id) and a preference-center link
# that names a contact rather than a message (shown after a confirmed sign-up).
SIGNUP_CONFIRM = "signup-confirm"
CONTACT_PREFERENCES = "contact-preferences"
