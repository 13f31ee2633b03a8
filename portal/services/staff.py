"""Staff actions: revoke, unlock, and audited reveal of messages and replies."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit, crypto
from luxmail.actors import Actor, actor_has_perm, user_of
from portal.models import PortalCode, PortalMessage, PortalReply, PortalSession
from portal.sanitize import sanitize_html
from portal.services.messages import _ids

# --- staff -----------------------------------------------------------------------------


def portal_message_revoke(
    *, portal_message: PortalMessage, actor: Actor, request: HttpRequest | None = None
) -> PortalMessage:
    """Revoke a portal message: its link shows "withdrawn", open sessions end.

    Idempotent. Audits ``portal.revoke``.
    """
    now = timezone.now()
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        if portal_message.revoked_at is not None:
            return portal_message
        portal_message.revoked_at = now
        portal_message.revoked_by = user_of(actor)
        portal_message.save(update_fields=["revoked_at", "revoked_by"])
        PortalSession.objects.filter(portal_message=portal_message, ended_at__isnull=True).update(
            ended_at=now
        )
        audit.record(
            "portal.revoke",
            actor=actor,
            request=request,
            target=portal_message,
            details=_ids(portal_message),
        )
    return portal_message


def portal_message_unlock(
    *, portal_message: PortalMessage, actor: Actor, request: HttpRequest | None = None
) -> PortalMessage:
    """Lift a lockout after staff confirmed the recipient's identity another way.

    Resets the failed-attempt count and discards earlier codes (the recipient asks for
    a new one). Audits ``portal.unlock``.
    """
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        if portal_message.locked_at is None:
            return portal_message
        portal_message.locked_at = None
        portal_message.failed_attempts = 0
        portal_message.save(update_fields=["locked_at", "failed_attempts"])
        # Old codes are void; dropping them also restarts the hourly code budget.
        PortalCode.objects.filter(portal_message=portal_message).delete()
        audit.record(
            "portal.unlock",
            actor=actor,
            request=request,
            target=portal_message,
            details=_ids(portal_message),
        )
    return portal_message


def portal_reply_reveal(
    *, reply: PortalReply, actor: Actor, request: HttpRequest | None = None
) -> str:
    """The reply's text for a staff member holding ``luxmail.view_phi``.

    Writes ``phi.access`` (purpose ``portal.reply_read``) and marks the reply read.
    Raises ``PermissionError`` for others.
    """
    if not actor_has_perm(actor, "luxmail.view_phi"):
        raise PermissionError("Reading replies needs the PHI permission.")
    access = crypto.phi_access(
        actor=actor,
        purpose="portal.reply_read",
        target=reply.portal_message,
        request=request,
        details={**_ids(reply.portal_message), "reply_id": reply.pk},
    )
    body = str(crypto.reveal(reply, "body", access=access))
    if reply.staff_read_at is None:
        PortalReply.objects.filter(pk=reply.pk, staff_read_at__isnull=True).update(
            staff_read_at=timezone.now(), staff_read_by=actor
        )
    return body


def portal_message_reveal(
    *, portal_message: PortalMessage, actor: Actor, request: HttpRequest | None = None
) -> tuple[str, str]:
    """Subject and sanitized HTML of a portal message, for staff with ``view_phi``.

    Writes ``phi.access`` (purpose ``portal.staff_view``). Raises ``PermissionError``.
    """

    if not actor_has_perm(actor, "luxmail.view_phi"):
        raise PermissionError("Reading portal messages needs the PHI permission.")
    access = crypto.phi_access(
        actor=actor,
        purpose="portal.staff_view",
        target=portal_message,
        request=request,
        details=_ids(portal_message),
    )
    subject = str(crypto.reveal(portal_message, "subject", access=access) or "")
    html = str(crypto.reveal(portal_message, "html", access=access) or "")
    return subject, sanitize_html(html)
