"""API keys: creation (secret shown once), authentication, revocation. All audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit
from luxmail.actors import Actor, user_of
from luxmail.api.scopes import validate_scopes
from luxmail.models import ApiKey

KEY_PREFIX = "lmk"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the full key, shown to the user once and never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *,
    name: str,
    scopes: list[str],
    actor: Actor,
    request: HttpRequest | None = None,
    expires_at: Any = None,
) -> IssuedKey:
    """Create a key; return it with its secret, which is not retrievable afterwards.

    Raises ``ValueError`` for an empty name or an unknown scope.
    """
    if not name.strip():
        raise ValueError("Give the API key a name.")
    scopes = validate_scopes(scopes)
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name.strip(),
            prefix=prefix,
            secret_hash=_hash(raw),
            scopes=scopes,
            created_by=user_of(actor),
            expires_at=expires_at,
        )
        audit.record(
            "api_key.create",
            actor=actor,
            request=request,
            target=key,
            details={"prefix": prefix, "scopes": scopes},
        )
    return IssuedKey(key=key, secret=raw)


def api_key_revoke(*, key: ApiKey, actor: Actor, request: HttpRequest | None = None) -> None:
    """Revoke ``key`` (idempotent); later requests with it fail authentication."""
    if key.revoked_at is not None:
        return
    with transaction.atomic():
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit.record(
            "api_key.revoke",
            actor=actor,
            request=request,
            target=key,
            details={"prefix": key.prefix},
        )


def api_key_authenticate(*, raw: str, request: HttpRequest) -> ApiKey | None:
    """The active key matching ``raw``, or None. Every use (and every failure) is audited."""
    parts = raw.split("_", 2)
    key = None
    if len(parts) == 3 and parts[0] == KEY_PREFIX:
        key = ApiKey.objects.filter(prefix=parts[1]).first()
    now = timezone.now()
    valid = (
        key is not None
        and hmac.compare_digest(key.secret_hash, _hash(raw))
        and key.revoked_at is None
        and (key.expires_at is None or key.expires_at > now)
    )
    details = {"method": request.method, "path": request.path}
    if not valid or key is None:
        audit.record(
            "api_key.denied",
            actor=f"api-key:{parts[1][:16] if len(parts) == 3 else '?'}",
            request=request,
            details=details,
        )
        return None
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    audit.record(
        "api_key.use", actor=f"api-key:{key.prefix}", request=request, target=key, details=details
    )
    return key
