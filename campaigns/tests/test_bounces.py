"""DSNs and complaints: parsed, matched to their message, and suppressing the address."""

from __future__ import annotations

import email
import smtplib

import pytest
from aiosmtpd.controller import Controller

from campaigns import services
from campaigns.management.commands.run_bounce_server import BounceHandler
from campaigns.models import BounceEvent, Message, MessageState, UnparsedFeedback
from campaigns.sending import bounces
from campaigns.tests.factories import make_campaign, make_contacts
from campaigns.tests.reports import arf, dsn
from contacts.models import Contact, ContactStatus
from luxmail.testing import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]


def _headers(received) -> str:
    return received.data.split(b"\r\n\r\n", 1)[0].decode()


@pytest.fixture
def bounce_server():
    port = free_port()
    controller = Controller(BounceHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def test_dsn_on_the_verp_address_bounces_and_suppresses(postgres, sink, admin, bounce_server):
    ids = make_contacts(3)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    received = sink.messages[0]
    verp = received.mail_from
    with smtplib.SMTP("127.0.0.1", bounce_server) as smtp:
        smtp.sendmail("", [verp], dsn(to=verp, original_headers=_headers(received)))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("", ["postmaster@clinic.example"], b"Subject: x\r\n\r\nhi\r\n")
        # Mail that is not a report is never refused: kept encrypted for reprocessing.
        smtp.sendmail("", [verp], b"Subject: not a report\r\n\r\nhello\r\n")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("", [verp], b"\x00\x01 no headers at all\r\n")
        assert refused.value.smtp_code == 554
    assert UnparsedFeedback.objects.get().received_count == 1
    bounced = Message.objects.get(state=MessageState.BOUNCED)
    assert bounced.contact.status == ContactStatus.BOUNCED
    event = BounceEvent.objects.get()
    assert (event.kind, event.status, event.suppressed) == ("hard", "5.1.1", True)
    assert "someone@example.test" not in event.diagnostic

    sink.messages.clear()
    again = make_campaign(contact_ids=ids, actor=admin)
    assert services.campaign_start(campaign=again, actor=admin) == 2
    assert bounced.contact_id not in set(
        Message.objects.filter(campaign=again).values_list("contact_id", flat=True)
    )


def test_message_id_identifies_a_dsn_without_verp(postgres, sink, admin) -> None:
    ids = make_contacts(1)
    services.campaign_start(campaign=make_campaign(contact_ids=ids, actor=admin), actor=admin)
    headers = "\r\n".join(
        line for line in _headers(sink.messages[0]).split("\r\n") if "bounces+" not in line
    )
    outcome = bounces.bounce_process(
        raw=dsn(to="postmaster@clinic.example", original_headers=headers), source="api"
    )
    assert outcome.events == 1 and outcome.suppressed == 1


def test_soft_bounces_suppress_after_the_limit(postgres, sink, admin, settings) -> None:
    settings.LUXMAIL_SOFT_BOUNCE_LIMIT = 2
    ids = make_contacts(1)
    services.campaign_start(campaign=make_campaign(contact_ids=ids, actor=admin), actor=admin)
    doc = dsn(
        to=sink.messages[0].mail_from,
        original_headers=_headers(sink.messages[0]),
        status="4.2.2",
        diagnostic="mailbox full",
    )
    # A delay warning about the same mailbox is not a bounce that counts (reason expired).
    delayed = doc.replace(b"Action: failed", b"Action: delayed")
    assert bounces.bounce_process(raw=delayed, source="api").suppressed == 0
    first = bounces.bounce_process(raw=doc, source="api")
    assert first.suppressed == 0
    assert Contact.objects.get(pk=ids[0]).status == ContactStatus.ACTIVE
    second = bounces.bounce_process(raw=doc, source="api")
    assert second.suppressed == 1
    assert Contact.objects.get(pk=ids[0]).status == ContactStatus.BOUNCED


def test_complaint_suppresses(postgres, sink, admin) -> None:
    ids = make_contacts(1)
    services.campaign_start(campaign=make_campaign(contact_ids=ids, actor=admin), actor=admin)
    outcome = bounces.bounce_process(
        raw=arf(original_headers=_headers(sink.messages[0])), source="api"
    )
    assert outcome.suppressed == 1
    assert Contact.objects.get(pk=ids[0]).status == ContactStatus.COMPLAINED
    assert Message.objects.get().state == MessageState.SENT  # delivered, then complained


def test_only_bytes_that_are_not_mail_are_refused(db) -> None:
    with pytest.raises(bounces.BounceError):
        bounces.bounce_process(raw=b"\x00binary", source="api")
    with pytest.raises(bounces.BounceError):
        bounces.bounce_process(raw=b"Subject: x\r\n\r\n" + b"a" * (3 << 20), source="api")
    unread = bounces.bounce_process(raw=b"Subject: hi\r\n\r\nhello", source="api")
    assert unread.unparsed == 1 and UnparsedFeedback.objects.count() == 1
    delivered = bounces.bounce_process(
        raw=dsn(to="x@y.test", original_headers="Subject: a", action="delivered"), source="api"
    )
    assert delivered.ignored == 1 and delivered.events == 0
    assert email.message_from_bytes(arf(original_headers="Subject: a"))
