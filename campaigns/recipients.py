"""What recipients do without signing in: unsubscribe (RFC 8058) and preferences.

Links carry a signed opaque token (``campaigns/sending/tokens.py``) naming a message, never an
address. Effects are immediate: suppression and consent revocation are written before
the response, and send batches check both when they claim messages. Every action is
audited (``recipient.*`` plus contacts' ``suppression.add`` / ``consent.revoke``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest

from campaigns.models import Campaign, Message
from campaigns.sending import tokens
from contacts import selectors as contact_selectors
from contacts import services as contact_services
from contacts.models import Contact, ContactStatus
from luxmail import audit

TEST_MESSAGE = 0


@dataclass
class RecipientLink:
    message_id: int
    message: Message | None
    contact: Contact | None
    campaign: Campaign | None

    @property
    def is_test(self) -> bool:
        return self.message_id == TEST_MESSAGE

    @property
    def actor(self) -> str:
        # Audit actor label: the recipient of this message (no address, no name).
        return f"recipient:message#{self.message_id}"


def link_for_token(token: str) -> RecipientLink:
    """Resolve an unsubscribe/preferences token; raises ``tokens.InvalidToken``."""
    message_id = tokens.read(tokens.UNSUBSCRIBE, token)
    if message_id == TEST_MESSAGE:
        return RecipientLink(message_id, None, None, None)
    message = Message.objects.select_related("campaign", "contact").filter(pk=message_id).first()
    if message is None:
        raise tokens.InvalidToken("This link has expired.")
    return RecipientLink(message_id, message, message.contact, message.campaign)


def _details(link: RecipientLink, **extra: object) -> dict[str, object]:
    return {
        "message_id": link.message_id,
        "campaign_id": link.campaign.pk if link.campaign else None,
        **extra,
    }


def unsubscribe(*, link: RecipientLink, one_click: bool, request: HttpRequest | None) -> bool:
    """Suppress the recipient's address (status ``unsubscribed``). Idempotent.

    Returns False for test messages and deleted contacts (nothing to change). Audits
    ``recipient.unsubscribe`` (method one-click or confirmed) and contacts'
    ``suppression.add``.
    """
    if link.contact is None:
        return False
    with transaction.atomic():
        _row, created = contact_services.suppression_add(
            reason="unsubscribe",
            contact=link.contact,
            actor=link.actor,
            note="unsubscribe link",
            request=request,
        )
        audit.record(
            "recipient.unsubscribe",
            actor=link.actor,
            target=link.contact,
            request=request,
            details=_details(link, method="one_click" if one_click else "confirmed", new=created),
        )
    return True


@dataclass
class Preferences:
    marketing: bool
    phi_marketing: bool
    unsubscribed: bool


def preferences(link: RecipientLink) -> Preferences:
    contact = link.contact
    if contact is None:
        return Preferences(False, False, True)
    return Preferences(
        marketing=contact_selectors.consent_present(contact=contact, purpose="marketing"),
        phi_marketing=contact_selectors.consent_present(contact=contact, purpose="phi_marketing"),
        unsubscribed=contact.status != ContactStatus.ACTIVE
        or contact_selectors.is_suppressed(contact=contact),
    )


def preferences_update(
    *,
    link: RecipientLink,
    marketing: bool,
    phi_marketing: bool,
    request: HttpRequest | None,
) -> Preferences:
    """Opt out of marketing and/or PHI marketing (opting back in needs the organization:
    a PHI-marketing authorization is a signed document). Audits ``recipient.preferences``
    and contacts' ``consent.revoke``."""
    contact = link.contact
    if contact is None:
        return preferences(link)
    current = preferences(link)
    revoked: list[str] = []
    with transaction.atomic():
        if current.marketing and not marketing:
            contact_services.consent_revoke(
                contact=contact,
                purpose="marketing",
                actor=link.actor,
                source="preferences",
                request=request,
            )
            revoked.append("marketing")
        if current.phi_marketing and not (phi_marketing and marketing):
            contact_services.consent_revoke(
                contact=contact,
                purpose="phi_marketing",
                actor=link.actor,
                source="preferences",
                request=request,
            )
            revoked.append("phi_marketing")
        audit.record(
            "recipient.preferences",
            actor=link.actor,
            target=contact,
            request=request,
            details=_details(link, revoked=revoked),
        )
    return preferences(link)
