"""Issue 14, effects: real-shaped feedback mail sent over SMTP to the real bounce server
(aiosmtpd + ``run_bounce_server``'s handler) about messages the real pipeline sent into
an SMTP sink; suppression only for the recipient's own reasons, sender-side evidence,
complaints, unread mail kept and reprocessed, and the API over all of it."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from campaigns import feedback_samples as mails
from campaigns import services
from campaigns.management.commands.run_bounce_server import BounceHandler
from campaigns.models import (
    BounceEvent,
    Message,
    MessageState,
    SenderEvent,
    UnparsedFeedback,
    UnparsedState,
)
from campaigns.sending import bounces, policy
from campaigns.tests.factories import make_campaign, make_contacts, make_sender
from contacts.models import Contact, ContactStatus, Suppression
from luxmail.models import AuditEvent
from luxmail.testing import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bounce_server():
    port = free_port()
    controller = Controller(
        BounceHandler(), hostname="127.0.0.1", port=port, data_size_limit=bounces.MAX_REPORT_BYTES
    )
    controller.start()
    yield port
    controller.stop()


def _sent(sink: Any) -> dict[str, tuple[str, str]]:
    """recipient → (VERP return path, original headers) of what the pipeline sent."""
    found = {}
    for received in sink.messages:
        headers = received.data.split(b"\r\n\r\n", 1)[0].decode()
        found[received.rcpt_tos[0]] = (received.mail_from, headers)
    return found


def _feed(port: int, verp: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("", [verp], raw)


def _send(
    port: int, sent: dict[str, tuple[str, str]], recipient: str, build: Callable[..., bytes]
) -> None:
    verp, headers = sent[recipient]
    _feed(port, verp, build(verp=verp, headers=headers, recipient=recipient))


def test_real_feedback_suppresses_only_for_the_recipients_own_reasons(
    postgres, sink, admin, bounce_server
) -> None:
    ids = make_contacts(8)
    sender = make_sender(admin, name="Clinic news")
    campaign = make_campaign(contact_ids=ids, actor=admin, sender=sender)
    services.campaign_start(campaign=campaign, actor=admin)
    sent = _sent(sink)
    assert len(sent) == 8
    port = bounce_server

    _send(port, sent, "p0@example.test", mails.multi_group_user_unknown)
    _send(port, sent, "p1@example.test", mails.dmarc_refusal)
    _send(port, sent, "p2@example.test", mails.spamhaus_block)
    _send(port, sent, "p3@example.test", mails.mailbox_full)
    _send(port, sent, "p4@example.test", mails.arf_abuse)
    _send(port, sent, "p5@example.test", mails.auth_failure_report)
    _send(port, sent, "p6@example.test", mails.out_of_office)
    _send(port, sent, "p7@example.test", mails.unreadable)

    def status(i: int) -> str:
        return Contact.objects.get(pk=ids[i]).status

    def message(i: int) -> Message:
        return Message.objects.get(campaign=campaign, contact_id=ids[i])

    # Recipient-permanent (user unknown, in the first group of a multi-group DSN).
    assert status(0) == ContactStatus.BOUNCED and message(0).state == MessageState.BOUNCED
    hard = BounceEvent.objects.get(contact_id=ids[0])
    assert (hard.kind, hard.reason, hard.scope, hard.suppressed) == (
        "hard",
        "user_unknown",
        "recipient_permanent",
        True,
    )
    assert hard.recipient_domain == "example.test" and len(hard.recipient_hash) == 32
    assert hard.sender_id == sender.pk and hard.sending_domain == "clinic.example"
    assert "p0@example.test" not in hard.diagnostic and hard.rule

    # Sender-side: DMARC and a blocklist never suppress; they are sender-health events.
    for i, reason in ((1, "auth_failure"), (2, "blocked")):
        assert status(i) == ContactStatus.ACTIVE
        assert message(i).state == MessageState.FAILED
        event = BounceEvent.objects.get(contact_id=ids[i])
        assert (event.reason, event.scope, event.suppressed) == (reason, "sender", False)
        block = SenderEvent.objects.get(kind="block", reason=reason)
        assert block.sending_domain == "clinic.example" and block.provider
    assert SenderEvent.objects.get(reason="auth_failure", kind="block").provider == "google.com"

    # Recipient-transient: mailbox full suppresses only at the third within 15 days.
    assert status(3) == ContactStatus.ACTIVE
    _send(port, sent, "p3@example.test", mails.mailbox_full)
    assert status(3) == ContactStatus.ACTIVE
    _send(port, sent, "p3@example.test", mails.mailbox_full)
    assert status(3) == ContactStatus.BOUNCED
    assert BounceEvent.objects.filter(contact_id=ids[3], reason="mailbox_full").count() == 3

    # A complaint suppresses (audited); an RFC 6591 report is never a complaint.
    assert status(4) == ContactStatus.COMPLAINED
    assert message(4).state == MessageState.SENT
    assert AuditEvent.objects.filter(action="bounce.complaint").count() == 1
    assert status(5) == ContactStatus.ACTIVE
    assert not BounceEvent.objects.filter(contact_id=ids[5]).exists()
    assert SenderEvent.objects.filter(kind="auth_failure_report").count() == 1
    assert BounceEvent.objects.filter(kind="complaint").count() == 1

    # An out-of-office is nothing; an unreadable mail is kept encrypted, never refused.
    assert status(6) == ContactStatus.ACTIVE and not BounceEvent.objects.filter(contact_id=ids[6])
    unread = UnparsedFeedback.objects.get()
    assert unread.state == UnparsedState.PENDING and b"helpdesk" not in bytes(unread.body)
    _send(port, sent, "p7@example.test", mails.unreadable)
    unread.refresh_from_db()
    assert unread.received_count == 2 and UnparsedFeedback.objects.count() == 1

    # Next campaign: exactly the recipient-fault addresses are left out.
    sink.messages.clear()
    again = make_campaign(contact_ids=ids, actor=admin, sender=sender)
    services.campaign_start(campaign=again, actor=admin)
    assert sorted(sink.recipients()) == [f"p{i}@example.test" for i in (1, 2, 5, 6, 7)]
    assert Suppression.objects.filter(removed_at=None).count() == 3


def test_reprocessing_unread_mail_applies_it_once_it_is_readable(postgres, sink, admin) -> None:
    ids = make_contacts(1)
    services.campaign_start(campaign=make_campaign(contact_ids=ids, actor=admin), actor=admin)
    verp, headers = _sent(sink)["p0@example.test"]
    still = bounces.bounce_process(
        raw=mails.unreadable(verp=verp, headers=headers, recipient="p0@example.test"),
        source="smtp",
        envelope_recipients=[verp],
    )
    assert still.unparsed == 1
    item = UnparsedFeedback.objects.get()
    assert services.unparsed_reprocess(item=item, actor=admin).unparsed == 1  # type: ignore[union-attr]
    item.refresh_from_db()
    assert item.state == UnparsedState.PENDING and item.attempts == 1 and item.body

    # What a parser upgrade looks like from here: the kept mail becomes readable.
    readable = mails.multi_group_user_unknown(
        verp=verp, headers=headers, recipient="p0@example.test"
    )
    from luxmail import crypto  # test-only: re-seal the stored body as an upgrade would read it

    crypto.seal(item, "body", readable)
    item.save(update_fields=["body"])
    outcome = services.unparsed_reprocess(item=item, actor=admin)
    assert outcome is not None and outcome.suppressed == 1
    item.refresh_from_db()
    assert item.state == UnparsedState.REPROCESSED and item.body is None
    assert (
        AuditEvent.objects.filter(action="phi.access", details__purpose="bounce.reprocess").count()
        == 2
    )
    assert services.unparsed_reprocess(item=item, actor=admin) is None


def test_policy_is_per_organization_and_sender_reasons_cannot_suppress(postgres, admin) -> None:
    row = services.feedback_policy_update(
        actor=admin, reason_actions={"mailbox_full": "never"}, soft_bounce_limit=2
    )
    assert policy.action_for("mailbox_full", row) == "never"
    assert policy.action_for("suspended", row) == "count"
    assert policy.action_for("user_unknown", row) == "suppress"
    for reason in ("auth_failure", "blocked", "spam_detected", "expired", "undefined"):
        assert policy.action_for(reason, row) == "never"
    with pytest.raises(services.FeedbackPolicyError):
        services.feedback_policy_update(actor=admin, reason_actions={"blocked": "suppress"})
    with pytest.raises(services.FeedbackPolicyError):
        services.feedback_policy_update(actor=admin, autopause_hard_bounce_percent="-1")
    assert AuditEvent.objects.filter(action="feedback_policy.update").count() == 1


def test_smtp_dialogue_refusals_use_the_same_policy(postgres, sink, admin) -> None:
    ids = make_contacts(2)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    first, second = Message.objects.filter(campaign=campaign).order_by("contact_id")
    dmarc = "550 5.7.26 Unauthenticated email from clinic.example is not accepted due to DMARC"
    assert bounces.sync_state(code=550, reply=dmarc) == MessageState.FAILED
    assert bounces.refusal_record(message_id=first.pk, code=550, reply=dmarc) is False
    unknown = "550 5.1.1 <p1@example.test>: Recipient address rejected: User unknown"
    assert bounces.sync_state(code=550, reply=unknown) == MessageState.BOUNCED
    assert bounces.refusal_record(message_id=second.pk, code=550, reply=unknown) is True
    assert SenderEvent.objects.get().reason == "auth_failure"


def test_feedback_api_lists_filters_and_reprocesses(postgres, sink, admin, bounce_server) -> None:
    from campaigns.tests.test_api import client_with  # the API tests' key client

    ids = make_contacts(3)
    sender = make_sender(admin, name="Clinic news")
    campaign = make_campaign(contact_ids=ids, actor=admin, sender=sender)
    services.campaign_start(campaign=campaign, actor=admin)
    sent = _sent(sink)
    _send(bounce_server, sent, "p0@example.test", mails.multi_group_user_unknown)
    _send(bounce_server, sent, "p1@example.test", mails.spamhaus_block)
    _send(bounce_server, sent, "p2@example.test", mails.arf_abuse)
    _send(bounce_server, sent, "p2@example.test", mails.unreadable)
    reader = client_with(["campaigns:read"], admin)
    listed = reader.get("/api/v1/bounce-events/?reason=user_unknown").json()["results"]
    assert [e["reason"] for e in listed] == ["user_unknown"]
    assert "p0@example.test" not in str(listed)
    by_campaign = reader.get(f"/api/v1/bounce-events/?campaign={campaign.pk}&sender={sender.pk}")
    assert len(by_campaign.json()["results"]) == 3
    provider = BounceEvent.objects.get(reason="blocked").provider
    assert len(reader.get(f"/api/v1/bounce-events/?provider={provider}").json()["results"]) == 1
    assert len(reader.get("/api/v1/complaints/").json()["results"]) == 1
    health = reader.get("/api/v1/sender-health/").json()["items"]
    identity = next(h for h in health if h["kind"] == "identity" and h["label"] == "Clinic news")
    assert identity["hard_bounces"] == 1 and identity["complaints"] == 1
    assert identity["badge"] in ("warning", "critical")
    assert reader.get("/api/v1/feedback-policy/").json()["soft_bounce_limit"] == 3
    assert reader.get("/api/v1/unparsed-feedback/").status_code == 403
    operator = client_with(["bounces:write"], admin)
    item = operator.get("/api/v1/unparsed-feedback/").json()["results"][0]
    assert "body" not in item
    again = operator.post(f"/api/v1/unparsed-feedback/{item['id']}/reprocess/")
    assert again.status_code == 200 and again.json()["attempts"] == 1
    bad = operator.patch(
        "/api/v1/feedback-policy/", {"reason_actions": {"blocked": "suppress"}}, format="json"
    )
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/problem+json")
    ok = operator.patch("/api/v1/feedback-policy/", {"soft_bounce_days": 20}, format="json")
    assert ok.status_code == 200 and ok.json()["soft_bounce_days"] == 20


def test_contact_page_shows_each_bounce_with_reason_and_evidence(
    postgres, sink, admin, staff_client, bounce_server
) -> None:
    ids = make_contacts(1)
    services.campaign_start(campaign=make_campaign(contact_ids=ids, actor=admin), actor=admin)
    sent = _sent(sink)
    _send(bounce_server, sent, "p0@example.test", mails.mailbox_full)
    client = staff_client()
    contact = Contact.objects.get(pk=ids[0])
    page = client.get(f"/contacts/{contact.uuid}/").content.decode()
    assert "Bounces and complaints" in page and "mailbox_full" in page and "4.2.2" in page
    assert "status:4.2.2" in page or "text:" in page
    deliverability = client.get("/campaigns/deliverability/?reason=mailbox_full")
    assert deliverability.status_code == 200 and "mailbox_full" in deliverability.content.decode()


def test_hostile_reports_stay_bounded_and_never_error(postgres, sink, admin) -> None:
    """A DSN with thousands of recipient groups, garbage statuses and a huge diagnostic:
    one event for the one message, nothing but redacted, bounded text stored."""
    ids = make_contacts(1)
    services.campaign_start(campaign=make_campaign(contact_ids=ids, actor=admin), actor=admin)
    verp, headers = _sent(sink)["p0@example.test"]
    groups = [
        f"Final-Recipient: rfc822; x{i}@example.net\nAction: failed\nStatus: 9.{i}.{i}\n"
        f"Diagnostic-Code: smtp; {'A' * 2000} p0@example.test"
        for i in range(3000)
    ]
    raw = mails._dsn(verp=verp, headers=headers, groups=groups, reporting_mta="mx.example.net")
    assert len(raw) < bounces.MAX_REPORT_BYTES * 4
    if len(raw) > bounces.MAX_REPORT_BYTES:
        with pytest.raises(bounces.BounceError):
            bounces.bounce_process(raw=raw, source="api")
        raw = mails._dsn(
            verp=verp, headers=headers, groups=groups[:500], reporting_mta="mx.example.net"
        )
    outcome = bounces.bounce_process(raw=raw, source="api", envelope_recipients=[verp])
    assert outcome.events == 1 and outcome.suppressed == 0
    event = BounceEvent.objects.get()
    assert len(event.diagnostic) <= 480 and "p0@example.test" not in event.diagnostic
    assert Contact.objects.get(pk=ids[0]).status == ContactStatus.ACTIVE


def test_notifications_list_and_mark_read(postgres, staff_client) -> None:
    from luxmail import notifications  # test-only

    notifications.notify(kind="campaign_auto_paused", title="Campaign paused itself", link="/x/")
    client = staff_client()
    page = client.get("/notifications/").content.decode()
    assert "Campaign paused itself" in page and "1 unread" in page
    client.post("/notifications/")
    assert notifications.unread_count(user=client.user) == 0
    assert AuditEvent.objects.filter(action="notification.read").count() == 1


def test_a_flood_of_unread_mail_is_counted_but_not_all_kept(postgres, monkeypatch) -> None:
    monkeypatch.setattr(bounces, "MAX_UNPARSED_PENDING", 2)
    for i in range(4):
        outcome = bounces.bounce_process(raw=f"Subject: junk {i}\r\n\r\nx".encode(), source="api")
        assert outcome.unparsed == 1
    assert UnparsedFeedback.objects.count() == 2
    assert AuditEvent.objects.filter(action="bounce.unparsed_dropped").count() == 2
