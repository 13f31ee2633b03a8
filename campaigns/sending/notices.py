"""LuxMail's own notices (portal codes and reply notices, sign-up confirmations): one
message to one address that is not a campaign ``Message`` row, no PHI in it.

They go out like campaign mail — the sender identity's From, DKIM-signed when it has a
key, through the relay or straight to the MX by the organization's delivery mode
(``campaigns/sending/direct.py``) — so a recipient sees the same sender as the notice.
"""

from __future__ import annotations

import logging
import secrets

from django.conf import settings

from campaigns.models import SenderIdentity
from campaigns.senders import signing
from campaigns.sending import direct, mail
from luxmail import crypto, org
from luxmail.models import DeliveryMode

logger = logging.getLogger(__name__)


def notice_from(sender: SenderIdentity | None) -> tuple[str, str]:
    """The From name and address: the sender identity's, else the organization's."""
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


def notice_send(
    *,
    kind: str,
    sender: SenderIdentity | None,
    to: str,
    subject: str,
    html: str,
    text: str,
) -> bool:
    """Build, sign and deliver one notice; True when the relay or MX accepted it.

    ``kind`` names the notice in its Message-ID and in the log line of a refusal (never
    the address). Delivery failures are logged, not raised.
    """
    from_name, from_email = notice_from(sender)
    domain = (sender.dkim_domain if sender is not None else "") or from_email.rpartition("@")[2]
    data = mail.build(
        mail.Envelope(
            from_name=from_name,
            from_email=from_email,
            to_email=to,
            subject=subject,
            html=html,
            text=text,
            message_id=f"<{kind}.{secrets.token_hex(12)}@{domain}>",
        )
    )
    outcome = direct.deliver_one(
        mail_from=from_email,
        recipient=to,
        data=_sign(sender, data),
        direct=org.get_settings().delivery_mode == DeliveryMode.DIRECT,
    )
    if not outcome.accepted:
        logger.warning("%s notice not accepted: %s %s", kind, outcome.kind, outcome.code)
    return outcome.accepted
