"""Link tokens and session hashes: what a portal link and session carry (hashes only stored)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from django.conf import settings

from portal.models import PortalMessage

# --- tokens and hashes -----------------------------------------------------------------


@cache
def _key(purpose: str, secret: str) -> bytes:
    return hashlib.sha256(f"luxmail.portal|{purpose}|{secret}".encode()).digest()


def _mac(purpose: str, data: bytes) -> bytes:
    return hmac.new(_key(purpose, settings.SECRET_KEY), data, hashlib.sha256).digest()


def link_token(portal_message: PortalMessage) -> str:
    """The opaque token of the message's link (recomputable, so a deferred notice can be
    rebuilt): 256 bits derived from the row's UUID with a server key. No PHI."""
    raw = _mac("link", portal_message.uuid.bytes)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def link_url(portal_message: PortalMessage) -> str:
    return f"{settings.LUXMAIL_BASE_URL}/portal/{link_token(portal_message)}/"


def _code_hash(portal_message: PortalMessage, code: str) -> bytes:
    return _mac("code", portal_message.uuid.bytes + b"|" + code.encode())


def session_hash(key: str) -> bytes:
    return _mac("session", key.encode())
