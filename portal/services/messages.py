"""Creating portal messages, including the store-and-notice used by sending."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from campaigns.models import Campaign
from luxmail import audit, crypto, org
from portal.models import PortalMessage
from portal.selectors import link_hash, portal_message_state
from portal.services.config import PortalUnavailable
from portal.services.tokens import link_token, link_url

# --- creation (send pipeline) ------------------------------------------------------------


def portal_message_create(
    *,
    message_id: int | None,
    campaign_id: int | None,
    contact_id: int | None,
    sender_id: int | None,
    recipient_email: str,
    subject: str,
    html: str,
    text: str,
    expiry_days: int,
) -> PortalMessage:
    """Store one rendered message for the portal, encrypted; idempotent per message.

    A message that already has a portal copy (a retried notice) keeps it unchanged, so
    the link in every try opens the same content with the same expiry.
    """
    with transaction.atomic():
        if message_id is not None:
            existing = PortalMessage.objects.filter(message_id=message_id).first()
            if existing is not None:
                return existing
        portal_message = PortalMessage(
            message_id=message_id,
            campaign_id=campaign_id,
            contact_id=contact_id,
            sender_id=sender_id,
            expires_at=timezone.now() + dt.timedelta(days=max(expiry_days, 1)),
        )
        portal_message.link_hash = link_hash(link_token(portal_message))
        crypto.seal(portal_message, "recipient_email", recipient_email)
        crypto.seal(portal_message, "subject", subject)
        crypto.seal(portal_message, "html", html)
        crypto.seal(portal_message, "text", text)
        portal_message.save()
        audit.record(
            "portal.create",
            target=portal_message,
            details={"message_id": message_id, "campaign_id": campaign_id},
        )
    return portal_message


def notice_content(
    *,
    portal_message: PortalMessage,
    settings_row: Any,
    sender_name: str,
    unsubscribe_url: str = "",
) -> tuple[str, str, str]:
    """The notice that replaces the message: ``(subject, html, text)`` without PHI.

    Subject and text are the organization's (Admins set them in Settings); the rest is
    the sender identity's name, the link and the expiry date.
    """
    context = {
        "org_name": settings_row.name,
        "sender_name": sender_name or settings_row.name,
        "notice_text": settings_row.portal_notification_text,
        "link": link_url(portal_message),
        "expires_at": portal_message.expires_at,
        "unsubscribe_url": unsubscribe_url,
        "postal_address": settings_row.postal_address,
    }
    return (
        settings_row.portal_notification_subject or "You have a new secure message",
        render_to_string("portal/email/notice.html", context),
        render_to_string("portal/email/notice.txt", context),
    )


def portal_message_for_delivery(
    *,
    message_id: int,
    campaign_id: int,
    contact_id: int | None,
    recipient_email: str,
    subject: str,
    html: str,
    text: str,
    settings_row: Any = None,
    unsubscribe_url: str = "",
) -> tuple[str, str, str]:
    """Store the rendered message in the portal (once per message) and return the
    notice that the pipeline sends instead: ``(subject, html, text)``, no PHI."""

    settings_row = settings_row or org.get_settings()
    campaign = Campaign.objects.select_related("sender").only("id", "sender").get(pk=campaign_id)
    sender = campaign.sender
    portal_message = portal_message_create(
        message_id=message_id,
        campaign_id=campaign_id,
        contact_id=contact_id,
        sender_id=sender.pk if sender is not None else None,
        recipient_email=recipient_email,
        subject=subject,
        html=html,
        text=text,
        expiry_days=settings_row.portal_expiry_days,
    )
    return notice_content(
        portal_message=portal_message,
        settings_row=settings_row,
        sender_name=sender.from_name if sender is not None else "",
        unsubscribe_url=unsubscribe_url,
    )


# --- state -----------------------------------------------------------------------------


def _check_open(portal_message: PortalMessage) -> None:
    state = portal_message_state(portal_message)
    if state != "active":
        raise PortalUnavailable(state)


def _ids(portal_message: PortalMessage) -> dict[str, Any]:
    return {
        "portal_message_id": portal_message.pk,
        "message_id": portal_message.message_id,
        "campaign_id": portal_message.campaign_id,
    }
