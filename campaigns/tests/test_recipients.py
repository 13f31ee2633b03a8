"""Unsubscribe (RFC 8058 one-click) and preferences, from the received message's links."""

from __future__ import annotations

import email
import email.policy

import pytest

from campaigns import services
from campaigns.models import Message
from campaigns.sending import tokens
from campaigns.tests.factories import make_campaign, make_contacts
from contacts.models import Contact, ContactStatus
from contacts.selectors import consent_present, is_suppressed
from luxmail.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]


def _unsubscribe_path(received) -> str:
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    url = parsed["List-Unsubscribe"].strip("<>")
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_get_does_not_unsubscribe_but_one_click_post_does(postgres, sink, admin, client) -> None:
    ids = make_contacts(2)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)  # eager Celery: sent on commit
    assert len(sink.messages) == 2
    path = _unsubscribe_path(sink.messages[0])
    assert path.startswith("/u/") and "@" not in path
    message = Message.objects.get(pk=tokens.read(tokens.UNSUBSCRIBE, path.split("/")[2]))
    contact = message.contact

    page = client.get(path)
    assert page.status_code == 200
    assert b"Unsubscribe" in page.content
    contact.refresh_from_db()
    assert contact.status == ContactStatus.ACTIVE and not is_suppressed(contact=contact)

    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.status == ContactStatus.UNSUBSCRIBED and is_suppressed(contact=contact)
    event = AuditEvent.objects.get(action="recipient.unsubscribe")
    assert event.details["method"] == "one_click"
    assert "@" not in str(event.details)

    # The next campaign skips the unsubscribed contact.
    sink.messages.clear()
    second = make_campaign(contact_ids=ids, actor=admin)
    assert services.campaign_start(campaign=second, actor=admin) == 1
    assert len(sink.messages) == 1


def test_confirmation_form_and_bad_tokens(postgres, sink, admin, client) -> None:
    ids = make_contacts(1)
    services.campaign_start(campaign=make_campaign(contact_ids=ids, actor=admin), actor=admin)
    path = _unsubscribe_path(sink.messages[0])
    # A POST without the one-click body or the confirmation only shows the page again.
    assert client.post(path, {}).status_code == 200
    assert Contact.objects.get(pk=ids[0]).status == ContactStatus.ACTIVE
    done = client.post(path, {"confirm": "yes"})
    assert b"You are unsubscribed" in done.content
    assert Contact.objects.get(pk=ids[0]).status == ContactStatus.UNSUBSCRIBED
    token = path.split("/")[2]
    # Change the first character: every bit of it is data (the last one's low bits are
    # base32 padding, so changing it could decode to the same token).
    forged = ("a" if token[0] != "a" else "b") + token[1:]
    assert client.get(f"/u/{forged}/").status_code == 404
    assert client.post(f"/u/{forged}/", {"List-Unsubscribe": "One-Click"}).status_code == 404
    assert client.get("/u/preview/").status_code == 404


def test_preferences_revoke_phi_marketing(postgres, sink, admin, client) -> None:
    ids = make_contacts(1, consent=("marketing", "phi_marketing"))
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    path = _unsubscribe_path(sink.messages[0]) + "preferences/"
    page = client.get(path)
    assert b"health information" in page.content
    client.post(path, {"marketing": "on"})
    contact = Contact.objects.get(pk=ids[0])
    assert consent_present(contact=contact, purpose="marketing")
    assert not consent_present(contact=contact, purpose="phi_marketing")
    assert AuditEvent.objects.filter(action="recipient.preferences").exists()
    # A PHI-bearing campaign now skips them; a plain one still reaches them.
    phi = make_campaign(contact_ids=ids, actor=admin, html="<p>{{ phi.age }}</p>")
    assert services.campaign_start(campaign=phi, actor=admin) == 0
