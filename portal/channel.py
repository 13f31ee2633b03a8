"""The portal as a secure channel of sending (``campaigns.sending.hooks.PortalChannel``).

Registered from ``PortalConfig.ready()``: campaigns sits below portal and calls these
two functions through the interface it defines, never by importing portal.
"""

from __future__ import annotations

from typing import Any

from campaigns.models import Message
from portal import services
from portal.models import PortalMessage
from portal.selectors import portal_message_state


def store_for_delivery(
    *,
    message_id: int,
    campaign_id: int,
    contact_id: int | None,
    recipient_email: str,
    subject: str,
    html: str,
    text: str,
    settings_row: Any,
    unsubscribe_url: str,
) -> tuple[str, str, str]:
    return services.portal_message_for_delivery(
        message_id=message_id,
        campaign_id=campaign_id,
        contact_id=contact_id,
        recipient_email=recipient_email,
        subject=subject,
        html=html,
        text=text,
        settings_row=settings_row,
        unsubscribe_url=unsubscribe_url,
    )


def status(message: Message) -> dict[str, Any] | None:
    portal_message = PortalMessage.objects.filter(message=message).first()
    if portal_message is None:
        return None
    return {
        "state": portal_message_state(portal_message),
        "expires_at": portal_message.expires_at,
        "first_read_at": portal_message.first_read_at,
        "replies": portal_message.replies.count(),
    }
