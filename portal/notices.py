"""The portal's own e-mails: verification codes and reply notices (no PHI in either).

They go out like campaign mail — the sender identity's From, DKIM-signed when it has a
key, through the relay or straight to the MX by the organization's delivery mode
(``campaigns/sending/direct.py``) — so a recipient sees the same sender as the notice.
"""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.template.loader import render_to_string

from campaigns.models import SenderIdentity
from campaigns.senders import signing
from campaigns.sending import direct, mail
from luxmail import crypto, org
from luxmail.models import DeliveryMode
from portal.models import PortalMessage, PortalReply

logger = logging.getLogger(__name__)


def _from(sender: SenderIdentity | None) -> tuple[str, str]:
    if sender is not None:
        return sender.from_name, sender.from_email
    return org.get_settings().name, str(settings.DEFAULT_FROM_EMAIL)


def _sign(sender: SenderIdentity | None, data: bytes) -> bytes:
    if sender is None or not sender.has_dkim:
        return data
    pem = crypto.reveal(sender, "dkim_private_key", access=crypto.secret_access("dkim.sign"))
    signer = signing.Signer(
        domain=sender.dkim_domain,
        selector=sender.dkim_selector,
        algorithm=sender.dkim_algorithm,
        private_pem=pem,
    )
    return signer.sign(data)


def _send(*, sender: SenderIdentity | None, to: str, subject: str, html: str, text: str) -> bool:
    from_name, from_email = _from(sender)
    domain = (sender.dkim_domain if sender is not None else "") or from_email.rpartition("@")[2]
    data = mail.build(
        mail.Envelope(
            from_name=from_name,
            from_email=from_email,
            to_email=to,
            subject=subject,
            html=html,
            text=text,
            message_id=f"<portal.{secrets.token_hex(12)}@{domain}>",
        )
    )
    data = _sign(sender, data)
    outcome = direct.deliver_one(
        mail_from=from_email,
        recipient=to,
        data=data,
        direct=org.get_settings().delivery_mode == DeliveryMode.DIRECT,
    )
    if not outcome.accepted:
        logger.warning("portal notice not accepted: %s %s", outcome.kind, outcome.code)
    return outcome.accepted


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
    return _send(
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
    return _send(
        sender=sender,
        to=to,
        subject="A secure reply is waiting in LuxMail",
        html=render_to_string("portal/email/reply_notice.html", context),
        text=render_to_string("portal/email/reply_notice.txt", context),
    )
