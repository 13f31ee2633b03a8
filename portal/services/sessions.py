"""Recipient sessions: resolve and end."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit
from portal.models import PortalMessage, PortalSession
from portal.selectors import portal_message_state
from portal.services.config import RECIPIENT, idle_seconds
from portal.services.messages import _ids
from portal.services.tokens import session_hash

# --- sessions --------------------------------------------------------------------------


def portal_session_resolve(
    *, portal_message: PortalMessage, session_key: str | None, request: HttpRequest | None = None
) -> PortalSession | None:
    """The live session of this message for ``session_key``, touched; or None.

    A session of another message never matches (the key is looked up together with
    the message). One idle longer than ``LUXMAIL_PORTAL_IDLE_SECONDS`` is ended
    (audited ``portal.session_idle``). A message no longer active has no sessions.
    """
    if not session_key:
        return None
    now = timezone.now()
    with transaction.atomic():
        session = (
            PortalSession.objects.select_for_update()
            .filter(
                portal_message=portal_message,
                key_hash=session_hash(session_key),
                ended_at__isnull=True,
            )
            .first()
        )
        if session is None:
            return None
        if portal_message_state(portal_message) != "active":
            session.ended_at = now
            session.save(update_fields=["ended_at"])
            return None
        if (now - session.last_seen_at).total_seconds() > idle_seconds():
            session.ended_at = now
            session.save(update_fields=["ended_at"])
            audit.record(
                "portal.session_idle",
                actor=RECIPIENT,
                target=portal_message,
                request=request,
                details=_ids(portal_message),
            )
            return None
        session.last_seen_at = now
        session.save(update_fields=["last_seen_at"])
    return session


def portal_session_end(*, session: PortalSession, request: HttpRequest | None = None) -> None:
    """Sign the recipient out of the message. Audits ``portal.signed_out``."""
    with transaction.atomic():
        updated = PortalSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
            ended_at=timezone.now()
        )
        if updated:
            audit.record(
                "portal.signed_out",
                actor=RECIPIENT,
                target=session.portal_message,
                request=request,
                details=_ids(session.portal_message),
            )
