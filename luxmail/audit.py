"""The tamper-evident audit log (DESIGN.md §4, docs/security.md).

Every login, MFA change, PHI view/export, segment query, send, setting change and
portal access calls :func:`record`. Each event stores the SHA-256 of its own canonical
content plus the previous event's hash, so editing, deleting or reordering any event
breaks the chain, which ``manage.py audit_verify`` detects.

Appends are serialized (a transaction-scoped advisory lock on PostgreSQL; SQLite
takes its write lock when the transaction begins), so concurrent writers never fork
the chain. ``details`` must never contain PHI: ids, counts and codes only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from luxmail.models import AuditEvent

if TYPE_CHECKING:
    from django.http import HttpRequest

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the advisory lock that serializes audit appends.
_ADVISORY_LOCK_ID = 0x4C55584155444954  # "LUXAUDIT"


def _canonical(event: AuditEvent) -> bytes:
    created = event.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    body = {
        "created_at": created,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "phi": bool(event.phi),
        "ip": event.ip,
        "user_agent": event.user_agent,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", True):
        return None, "system" if actor is None else "anonymous"
    if isinstance(actor, str):
        return None, actor[:200]
    return getattr(actor, "pk", None), str(getattr(actor, "get_username", lambda: actor)())[:200]


def _request_fields(request: HttpRequest | None) -> tuple[str, str]:
    if request is None:
        return "", ""
    from axes.helpers import get_client_ip_address

    ip = get_client_ip_address(request) or ""
    return str(ip)[:45], request.META.get("HTTP_USER_AGENT", "")[:300]


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_ID])


def record(
    action: str,
    *,
    actor: Any = None,
    target: Model | None = None,
    target_type: str = "",
    target_id: str = "",
    phi: bool = False,
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain and return it.

    ``actor`` is a user, ``None`` for the system, or a label such as ``"api-key:ab12"``.
    Runs in (or joins) a transaction; the chain lock is held until that commits.
    """
    actor_id, actor_label = _actor_fields(actor)
    if request is not None and actor is None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor_id, actor_label = _actor_fields(user)
    if target is not None:
        target_type = target._meta.label_lower
        target_id = str(getattr(target, "uuid", None) or target.pk)
    ip, user_agent = _request_fields(request)
    with transaction.atomic():
        _lock_chain()
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            created_at=timezone.now(),
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            target_type=target_type,
            target_id=target_id,
            phi=phi,
            ip=ip,
            user_agent=user_agent,
            details=details or {},
            prev_hash=last or GENESIS_HASH,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    broken_event_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_event_id is None


def _events() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("id").iterator(chunk_size=5000)


def verify() -> VerifyResult:
    """Walk the whole chain in id order; report the first event that does not verify.

    The first remaining event is trusted as the anchor when older events were purged
    by retention (its ``prev_hash`` then names the last purged event).
    """
    checked = 0
    previous: str | None = None
    for event in _events():
        if previous is not None and event.prev_hash != previous:
            return VerifyResult(
                checked, event.pk, "its prev_hash does not match the event before it"
            )
        if compute_hash(event) != event.hash:
            return VerifyResult(checked, event.pk, "its content does not match its hash")
        previous = event.hash
        checked += 1
    return VerifyResult(checked)


def purge_expired(*, now: datetime | None = None) -> int:
    """Delete events older than ``LUXMAIL_AUDIT_RETENTION_DAYS`` (never under six years).

    Only a prefix of the chain is removed, so what remains still verifies. On
    PostgreSQL the trigger allows this DELETE only for rows past the six-year floor
    and only when ``luxmail.audit_purge`` is set for the transaction.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.LUXMAIL_AUDIT_RETENTION_DAYS)
    with transaction.atomic():
        _lock_chain()
        last_old = AuditEvent.objects.filter(created_at__lt=cutoff).order_by("-id").first()
        if last_old is None:
            return 0
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('luxmail.audit_purge', 'on', true)")
        deleted, _ = AuditEvent.objects.filter(id__lte=last_old.pk).delete()
        record(
            "audit.purge",
            details={
                "deleted": deleted,
                "anchor_hash": last_old.hash,
                "cutoff": cutoff.isoformat(),
            },
        )
    return deleted
