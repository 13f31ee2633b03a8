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
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from luxmail import audit_checkpoints as checkpoints
from luxmail.actors import Actor, AuditContext
from luxmail.models import AuditEvent, BreakGlassGrant

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

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


def _actor_fields(actor: Actor) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", True):
        return None, "system" if actor is None else "anonymous"
    if isinstance(actor, str):
        return None, actor[:200]
    return getattr(actor, "pk", None), str(getattr(actor, "get_username", lambda: actor)())[:200]


def _request_fields(request: HttpRequest | None) -> tuple[str, str]:
    if request is None:
        return "", ""

    ip = get_client_ip_address(request) or ""
    return str(ip)[:45], request.META.get("HTTP_USER_AGENT", "")[:300]


def break_glass_grant_id(user_id: int) -> int | None:
    """The user's open break-glass grant (``luxmail/breakglass.py``), if any."""
    return (
        BreakGlassGrant.objects.filter(
            user_id=user_id, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        .order_by("-expires_at")
        .values_list("pk", flat=True)
        .first()
    )


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_ID])


def record(
    action: str,
    *,
    actor: Actor = None,
    target: Model | None = None,
    target_type: str = "",
    target_id: str = "",
    phi: bool = False,
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
    context: AuditContext | None = None,
) -> AuditEvent:
    """Append one event to the chain and return it.

    ``actor`` is an :data:`~luxmail.actors.Actor`: a user, an API key, ``None`` for the
    system, or a label such as ``"journey:7"``. ``context`` (an
    :class:`~luxmail.actors.AuditContext`) gives actor and request in one value instead.
    Runs in (or joins) a transaction; the chain lock is held until that commits.
    """
    if context is not None:
        actor, request = context.actor, context.request
    actor_id, actor_label = _actor_fields(actor)
    if request is not None and actor is None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor_id, actor_label = _actor_fields(user)
    if phi and actor_id is not None:
        # Issue 17 §6: PHI access under a break-glass grant is flagged. A key added to
        # details keeps the hash format as it was (details is hashed as a whole).
        grant_id = break_glass_grant_id(actor_id)
        if grant_id is not None:
            details = {**(details or {}), "break_glass": grant_id}
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


class AuditChainError(Exception):
    """The audit chain or its checkpoint does not verify (the message says where)."""


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    broken_event_id: int | None = None
    reason: str = ""
    # Set when the chain links up but does not match the latest checkpoint (events cut
    # off either end) or the checkpoint file itself cannot be trusted.
    anchor_problem: str = ""
    checkpoint: checkpoints.Checkpoint | None = None

    @property
    def ok(self) -> bool:
        return self.broken_event_id is None and not self.anchor_problem

    @property
    def message(self) -> str:
        if self.broken_event_id is not None:
            return (
                f"Audit chain broken at event #{self.broken_event_id}: {self.reason} "
                f"({self.checked} events verified before it)."
            )
        if self.anchor_problem:
            return f"Audit chain not confirmed by its checkpoint: {self.anchor_problem}."
        return f"Audit chain intact: {self.checked} events checked."


@dataclass
class _Walk:
    checked: int = 0
    first: tuple[int, str] | None = None
    last: tuple[int, str] | None = None
    broken_event_id: int | None = None
    reason: str = ""


def _walk(start_id: int | None = None) -> _Walk:
    """Check hashes and links in id order from ``start_id`` (default: the first event)."""
    walk = _Walk()
    events = AuditEvent.objects.order_by("id")
    if start_id is not None:
        events = events.filter(id__gte=start_id)
    previous: str | None = None
    for event in events.iterator(chunk_size=5000):
        if previous is not None and event.prev_hash != previous:
            walk.broken_event_id = event.pk
            walk.reason = "its prev_hash does not match the event before it"
            return walk
        if compute_hash(event) != event.hash:
            walk.broken_event_id = event.pk
            walk.reason = "its content does not match its hash"
            return walk
        if walk.first is None:
            walk.first = (event.pk, event.hash)
        walk.last = (event.pk, event.hash)
        previous = event.hash
        walk.checked += 1
    return walk


def _oldest_end_problem(
    anchor: checkpoints.Checkpoint, first: tuple[int, str] | None, taken: str
) -> str:
    if first is None:
        return f"all {anchor.count} events counted by {taken} are missing (the table is empty)"
    if anchor.first_id is not None and first[0] > anchor.first_id:
        return (
            f"the oldest events are missing: {taken} starts the chain at event "
            f"#{anchor.first_id}, the table now starts at #{first[0]}"
        )
    if first[0] != anchor.first_id:
        return f"event #{first[0]} precedes the first event #{anchor.first_id} of {taken}"
    if first[1] != anchor.first_hash:
        return f"the first event #{first[0]} differs from {taken}"
    return ""


def _anchor_problem(
    anchor: checkpoints.Checkpoint,
    *,
    first: tuple[int, str] | None,
    last: tuple[int, str] | None,
    anchor_last_hash: str | None,
    count_to_anchor: int,
    purged: bool = False,
) -> str:
    """What differs between the table's ends and the checkpoint ("" when nothing).

    ``purged``: a retention purge just removed the oldest events, so only the newest
    end is compared.
    """
    if anchor.count == 0 or anchor.last_id is None:
        return ""
    taken = f"the checkpoint of {anchor.at}"
    if not purged and (problem := _oldest_end_problem(anchor, first, taken)):
        return problem
    if anchor_last_hash is None:
        end = f"#{last[0]}" if last else "nowhere"
        return (
            f"the newest events are missing: {taken} ends the chain at event "
            f"#{anchor.last_id}, which is gone (the table now ends at {end})"
        )
    if anchor_last_hash != anchor.last_hash:
        return f"event #{anchor.last_id} differs from {taken}"
    if not purged and count_to_anchor != anchor.count:
        return (
            f"{anchor.count - count_to_anchor} events up to #{anchor.last_id} are missing: "
            f"{taken} counted {anchor.count}, the table holds {count_to_anchor}"
        )
    return ""


def _candidate(
    walk_count: int, first: tuple[int, str] | None, last: tuple[int, str] | None, reason: str
) -> checkpoints.Checkpoint:
    return checkpoints.Checkpoint(
        count=walk_count,
        first_id=first[0] if first else None,
        first_hash=first[1] if first else "",
        last_id=last[0] if last else None,
        last_hash=last[1] if last else "",
        at=checkpoints.now_iso(),
        reason=reason,
    )


def _latest_checkpoint() -> tuple[checkpoints.Checkpoint | None, str]:
    try:
        return checkpoints.latest(), ""
    except checkpoints.CheckpointError as error:
        return None, f"the checkpoint file is not trustworthy: {error}"
    except OSError as error:
        return None, f"the checkpoint file cannot be read ({error.strerror or error})"


def _unwritable(error: Exception) -> str:
    # An OSError's reason without its path; a CheckpointError's message names the line.
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return f"the chain holds, but no checkpoint could be written ({reason})"


def verify(*, write_checkpoint: bool = True) -> VerifyResult:
    """Walk the whole chain in id order and check both ends against the latest checkpoint.

    Reports the first event whose content or link is wrong; otherwise, events missing
    at either end (fewer events than checkpointed, the checkpoint's last event gone,
    the first event changed) or an untrustworthy checkpoint file. When everything
    holds and ``write_checkpoint``, appends a new checkpoint for the chain as verified.
    The first event is trusted as the anchor of what retention purged before it (its
    ``prev_hash`` names the last purged event); a purge writes a checkpoint itself.
    """
    anchor, problem = _latest_checkpoint()
    if problem:
        return VerifyResult(0, anchor_problem=problem)
    walk = _walk()
    if walk.broken_event_id is not None:
        return VerifyResult(walk.checked, walk.broken_event_id, walk.reason, checkpoint=anchor)
    if anchor is not None and anchor.last_id is not None:
        anchor_row = (
            AuditEvent.objects.filter(id=anchor.last_id).values_list("hash", flat=True).first()
        )
        count_to_anchor = AuditEvent.objects.filter(id__lte=anchor.last_id or 0).count()
        problem = _anchor_problem(
            anchor,
            first=walk.first,
            last=walk.last,
            anchor_last_hash=anchor_row,
            count_to_anchor=count_to_anchor,
        )
        if problem:
            return VerifyResult(walk.checked, anchor_problem=problem, checkpoint=anchor)
    if write_checkpoint:
        candidate = _candidate(walk.checked, walk.first, walk.last, "verify")
        try:
            anchor = checkpoints.append(candidate)
        except (OSError, checkpoints.CheckpointError) as error:
            return VerifyResult(walk.checked, anchor_problem=_unwritable(error), checkpoint=anchor)
    return VerifyResult(walk.checked, checkpoint=anchor)


def checkpoint_write(*, reason: str = "periodic", purged: bool = False) -> VerifyResult:
    """Append a checkpoint for the chain as it is now, after checking it still holds.

    Cheap enough to run every few minutes: it checks the ends against the latest
    checkpoint and walks only the events since that checkpoint's last one. Writes
    nothing when that check fails (a tampered chain is never blessed) and returns
    the problem instead. ``purged``: called right after a retention purge, which
    legitimately removed the oldest events.
    """
    anchor, problem = _latest_checkpoint()
    if problem:
        return VerifyResult(0, anchor_problem=problem)
    walk = _walk(anchor.last_id if anchor is not None else None)
    if walk.broken_event_id is not None:
        return VerifyResult(walk.checked, walk.broken_event_id, walk.reason, checkpoint=anchor)
    first_row = AuditEvent.objects.order_by("id").values_list("id", "hash").first()
    first = (first_row[0], first_row[1]) if first_row else None
    if anchor is not None:
        anchor_last_hash = (
            walk.first[1] if walk.first is not None and walk.first[0] == anchor.last_id else None
        )
        count_to_anchor = AuditEvent.objects.filter(id__lte=anchor.last_id or 0).count()
        table_last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        problem = _anchor_problem(
            anchor,
            first=first,
            last=(table_last[0], table_last[1]) if table_last else None,
            anchor_last_hash=anchor_last_hash,
            count_to_anchor=count_to_anchor,
            purged=purged,
        )
        if problem:
            return VerifyResult(walk.checked, anchor_problem=problem, checkpoint=anchor)
    last = walk.last or (
        (anchor.last_id, anchor.last_hash) if anchor and anchor.last_id is not None else None
    )
    count = AuditEvent.objects.filter(id__lte=last[0]).count() if last else 0
    try:
        written = checkpoints.append(_candidate(count, first, last, reason))
    except (OSError, checkpoints.CheckpointError) as error:
        return VerifyResult(count, anchor_problem=_unwritable(error), checkpoint=anchor)
    return VerifyResult(count, checkpoint=written)


def verification_run(*, actor: Actor = None, request: HttpRequest | None = None) -> VerifyResult:
    """Verify the chain and audit the verification (``audit.verify``, its outcome).

    The compliance page shows the newest of these events as "last verification".
    """
    result = verify()
    record(
        "audit.verify",
        actor=actor,
        request=request,
        details={
            "checked": result.checked,
            "ok": result.ok,
            "broken_event_id": result.broken_event_id,
            "problem": result.reason or result.anchor_problem,
            "checkpoint_line": result.checkpoint.line if result.checkpoint else None,
        },
    )
    return result


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
        # Anchor the new first event once the purge is committed, or the next
        # verification would report the purged events as cut off.
        transaction.on_commit(lambda: _checkpoint_after_purge())
    return deleted


def _checkpoint_after_purge() -> None:
    result = checkpoint_write(reason="purge", purged=True)
    if not result.ok:
        logger.error("audit checkpoint after purge not written: %s", result.message)
