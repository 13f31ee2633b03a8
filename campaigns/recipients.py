"""What recipients do without signing in: unsubscribe (RFC 8058) and preferences.

Links carry a signed opaque token (``campaigns/sending/tokens.py``) naming a message, never an
address. Effects are immediate: suppression and consent revocation are written before
the response, and send batches check both when they claim messages. Every action is
audited (``recipient.*`` plus contacts' ``suppression.add`` / ``consent.revoke``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.sending import tokens
from contacts import selectors as contact_selectors
from contacts import services as contact_services
from contacts import signup_selectors
from contacts.models import (
    Contact,
    ContactList,
    ContactStatus,
    LedgerKind,
    ListMembership,
    SignupForm,
)
from contacts.services import signup
from luxmail import audit, clients

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
        if self.message is None and self.contact is not None:
            return f"recipient:contact#{self.contact.pk}"
        return f"recipient:message#{self.message_id}"


def link_for_token(token: str) -> RecipientLink:
    """Resolve an unsubscribe/preferences token; raises ``tokens.InvalidToken``.

    A message's token, or (issue 18) a contact's preference token shown after a
    confirmed sign-up."""
    try:
        message_id = tokens.read(tokens.UNSUBSCRIBE, token)
    except tokens.InvalidToken:
        contact_id = tokens.read(tokens.CONTACT_PREFERENCES, token)
        contact = Contact.objects.filter(pk=contact_id).first()
        if contact is None:
            raise tokens.InvalidToken("This link has expired.") from None
        return RecipientLink(-1, None, contact, None)
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
        signup.ledger_record(
            contact=link.contact,
            kind=LedgerKind.UNSUBSCRIBE,
            actor=link.actor,
            source="one_click" if one_click else "unsubscribe_page",
            evidence=_evidence(request),
        )
    return True


def _evidence(request: HttpRequest | None) -> dict[str, str]:
    if request is None:
        return {}
    return {
        "ip": clients.client_ip(request.META),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
    }


@dataclass
class Preferences:
    marketing: bool
    phi_marketing: bool
    unsubscribed: bool
    topics: list[tuple[int, str, bool]] = field(default_factory=list)
    frequency: str = "all"
    channel: str = "email"
    language: str = ""
    paused_until: dt.datetime | None = None
    languages: list[tuple[str, str]] = field(default_factory=list)
    intro: str = ""
    footer: str = ""


def _topics() -> list[ContactList]:
    # The lists patients can choose are the ones offered on sign-up forms.
    ids = SignupForm.objects.filter(published=True).values_list("lists", flat=True)
    return list(ContactList.objects.filter(pk__in=[i for i in ids if i]).order_by("name"))


def preferences(link: RecipientLink) -> Preferences:
    """What the preference center shows. Reads only: GET never changes anything."""
    contact = link.contact
    if contact is None:
        return Preferences(False, False, True)
    pref = signup.preferences_of(contact)
    member = set(
        ListMembership.objects.filter(contact=contact).values_list("contact_list_id", flat=True)
    )
    settings_row = signup_selectors.signup_settings()
    languages = [(str(code), str(label)) for code, label in settings_row.languages or []]
    return Preferences(
        marketing=contact_selectors.consent_present(contact=contact, purpose="marketing"),
        phi_marketing=contact_selectors.consent_present(contact=contact, purpose="phi_marketing"),
        unsubscribed=contact.status != ContactStatus.ACTIVE
        or contact_selectors.is_suppressed(contact=contact),
        topics=[(t.pk, t.name, t.pk in member) for t in _topics()],
        frequency=pref.frequency,
        channel=pref.channel,
        language=pref.language,
        paused_until=pref.paused_until
        if pref.paused_until and pref.paused_until > _now()
        else None,
        languages=languages,
        intro=settings_row.preferences_intro,
        footer=settings_row.preferences_footer,
    )


def _now() -> dt.datetime:
    return timezone.now()


def preferences_update(
    *,
    link: RecipientLink,
    marketing: bool,
    phi_marketing: bool,
    request: HttpRequest | None,
    topics: set[int] | None = None,
    frequency: str | None = None,
    channel: str | None = None,
    language: str | None = None,
    pause_days: int | None = None,
) -> Preferences:
    """Opt out of marketing and/or PHI marketing (opting back in needs the organization:
    a PHI-marketing authorization is a signed document), and (issue 18) change topics,
    frequency, channel, language or pause. Audits ``recipient.preferences`` and
    contacts' ``consent.revoke``; writes the consent ledger. Raises
    ``signup.SignupError`` for a choice not offered."""
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
            signup.ledger_record(
                contact=contact,
                kind=LedgerKind.REVOCATION,
                purpose="marketing",
                actor=link.actor,
                source="preferences",
                evidence=_evidence(request),
            )
            revoked.append("marketing")
        if current.phi_marketing and not (phi_marketing and marketing):
            signup.authorization_revoke(
                contact=contact,
                actor=link.actor,
                source="preferences",
                evidence=_evidence(request),
                request=request,
            )
            revoked.append("phi_marketing")
        if topics is not None:
            for pk, _name, member in current.topics:
                wanted = pk in topics
                if wanted != member:
                    service = (
                        contact_services.list_members_add
                        if wanted
                        else contact_services.list_members_remove
                    )
                    service(
                        contact_list=ContactList.objects.get(pk=pk),
                        contact_ids=[contact.pk],
                        actor=link.actor,
                        request=request,
                    )
        if frequency or channel or language or pause_days is not None:
            codes = {code for code, _label in current.languages}
            lang = language if language in codes else current.language
            signup.preferences_save(
                contact=contact,
                frequency=frequency or current.frequency,
                channel=channel or current.channel,
                language=lang or "",
                pause_days=pause_days,
                actor=link.actor,
            )
        audit.record(
            "recipient.preferences",
            actor=link.actor,
            target=contact,
            request=request,
            details=_details(link, revoked=revoked),
        )
    return preferences(link)


def resubscribe(
    *, link: RecipientLink, request: HttpRequest, notify: Callable[[int], None]
) -> bool:
    """Ask for a confirmation mail to come back after an unsubscribe; nothing changes
    until the recipient confirms it (``contacts.services.signup.submission_confirm``).
    Returns False for links without a contact. Raises ``signup.SignupLimited``."""
    if link.contact is None:
        return False
    signup.resubscribe_request(
        contact=link.contact,
        ip=clients.client_ip(request.META),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        notify=notify,
    )
    return True
