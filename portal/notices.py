"""The portal's own e-mails: verification codes and reply notices (no PHI in either).

They go out as LuxMail's notices (``campaigns/sending/notices.py``): the sender
identity's From, DKIM-signed, through the relay or straight to the MX.
"""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from campaigns.sending import notices
from luxmail import org
from portal.models import PortalMessage, PortalReply


def send_code(*, portal_message: PortalMessage, recipient: str, code: str) -> bool:
    """E-mail a verification code; True when the relay or MX accepted it."""
    sender = portal_message.sender
    settings_row = org.get_settings()
    context = {
        "code": code,
        "org_name": settings_row.name,
        "sender_name": sender.from_name if sender is not None else settings_row.name,
        "minutes": 10,
    }
    return notices.notice_send(
        kind="portal",
        sender=sender,
        to=recipient,
        subject=f"Your verification code from {context['sender_name']}",
        html=render_to_string("portal/email/code.html", context),
        text=render_to_string("portal/email/code.txt", context),
    )


def send_reply_notice(*, reply: PortalReply) -> bool:
    """Tell the sender identity's reply-to (or From) that a secure reply is waiting."""
    sender = reply.portal_message.sender
    settings_row = org.get_settings()
    to = (sender.reply_to or sender.from_email) if sender is not None else ""
    to = to or str(settings.DEFAULT_FROM_EMAIL)
    context = {
        "org_name": settings_row.name,
        "link": f"{settings.LUXMAIL_BASE_URL}/secure-messages/replies/{reply.uuid}/",
    }
    return notices.notice_send(
        kind="portal",
        sender=sender,
        to=to,
        subject="A secure reply is waiting in LuxMail",
        html=render_to_string("portal/email/reply_notice.html", context),
        text=render_to_string("portal/email/reply_notice.txt", context),
    )


def send_staff_reply_notice(*, portal_message: PortalMessage, recipient: str, link: str) -> bool:
    """Tell the patient a new secure message waits in the portal: the sender's name and
    the message's link, nothing of the conversation."""
    sender = portal_message.sender
    settings_row = org.get_settings()
    context = {
        "org_name": settings_row.name,
        "sender_name": sender.from_name if sender is not None else settings_row.name,
        "link": link,
    }
    return notices.notice_send(
        kind="portal",
        sender=sender,
        to=recipient,
        subject=f"New secure message from {context['sender_name']}",
        html=render_to_string("portal/email/staff_reply_notice.html", context),
        text=render_to_string("portal/email/staff_reply_notice.txt", context),
    )
