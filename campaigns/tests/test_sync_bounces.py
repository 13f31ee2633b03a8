"""A synchronous 5xx at RCPT or DATA is handled like the same refusal in a DSN (issue 11).

Real aiosmtpd servers refuse one recipient during the SMTP dialogue; the message is
marked bounced (address-level, 5.1.x: the address is suppressed) or failed (anything
else: not suppressed), with a bounce event like a DSN would leave.
"""

from __future__ import annotations

from typing import Any

import pytest

from campaigns import services
from campaigns.models import BounceEvent, Message, MessageState
from campaigns.sending import delivery
from campaigns.tests.factories import make_campaign, make_contacts
from campaigns.tests.smtp_fixtures import RecordingHandler, smtp_server
from contacts.models import Suppression

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


class RefusingHandler(RecordingHandler):
    """Refuses one address at RCPT or at DATA with the given reply."""

    def __init__(self, address: str, reply: str, at: str) -> None:
        super().__init__()
        self.address, self.reply, self.at = address, reply, at

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if self.at == "RCPT" and address == self.address:
            return self.reply
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.at == "DATA" and self.address in envelope.rcpt_tos:
            return self.reply
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("at", ["RCPT", "DATA"])
@pytest.mark.parametrize(
    ("reply", "suppressed", "state"),
    [
        ("550 5.1.1 <p1@example.test>: user unknown", True, MessageState.BOUNCED),
        ("554 5.7.1 message content rejected", False, MessageState.FAILED),
    ],
)
def test_synchronous_5xx_is_handled_like_a_dsn(
    postgres, admin, settings, at: str, reply: str, suppressed: bool, state: str
) -> None:
    handler = RefusingHandler("p1@example.test", reply, at)
    with smtp_server(handler=handler) as server:
        settings.LUXMAIL_SMTP_HOST = server.host
        settings.LUXMAIL_SMTP_PORT = server.port
        settings.LUXMAIL_SMTP_SECURITY = "none"
        settings.LUXMAIL_SMTP_USER = None
        ids = make_contacts(3)
        campaign = make_campaign(contact_ids=ids, actor=admin)
        services.campaign_start(campaign=campaign, actor=admin)
        try:
            delivery.send_batch(campaign_id=campaign.pk)
        finally:
            from campaigns.sending.transport import pool

            pool().close_all()
    assert sorted(r for m in server.messages for r in m.rcpt_tos) == [
        "p0@example.test",
        "p2@example.test",
    ]
    refused = Message.objects.get(contact_id=ids[1])
    assert refused.state == state
    assert refused.smtp_code == int(reply[:3])
    assert reply[4:9] in refused.smtp_reply and "p1@example.test" not in refused.smtp_reply
    assert Suppression.objects.filter(removed_at__isnull=True).exists() is suppressed
    event: Any = BounceEvent.objects.get(message=refused)
    # Hard means "the recipient's address, for good" (issue 14): a content refusal is
    # sender-side, so a soft event that never suppresses, though the message failed.
    assert event.kind == ("hard" if suppressed else "soft")
    assert event.status == reply[4:9] and event.source == "smtp-dialogue"
    assert event.reason == ("user_unknown" if suppressed else "content_rejected")
    assert event.suppressed is suppressed
    assert set(Message.objects.exclude(pk=refused.pk).values_list("state", flat=True)) == {
        MessageState.SENT
    }


@pytest.mark.parametrize(
    ("status", "suppressed", "state"),
    [("5.1.1", True, MessageState.BOUNCED), ("5.7.1", False, MessageState.FAILED)],
)
def test_the_same_refusal_as_a_dsn_gets_the_same_verdict(
    postgres, sink, admin, status: str, suppressed: bool, state: str
) -> None:
    from campaigns.sending import bounces
    from campaigns.tests.reports import dsn

    ids = make_contacts(1)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    delivery.send_batch(campaign_id=campaign.pk)
    received = sink.messages[0]
    headers = received.data.split(b"\r\n\r\n", 1)[0].decode()
    outcome = bounces.bounce_process(
        raw=dsn(to=received.mail_from, original_headers=headers, status=status), source="api"
    )
    assert outcome.suppressed == int(suppressed)
    assert Message.objects.get().state == state
    assert Suppression.objects.filter(removed_at__isnull=True).exists() is suppressed
