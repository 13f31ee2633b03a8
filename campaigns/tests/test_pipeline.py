"""The send pipeline end to end, in process: claims, leases, outcomes, recovery.

Batches run synchronously here (``delivery.send_batch``) against a real aiosmtpd sink
and PostgreSQL; ``test_worker.py`` runs the same through real Celery workers.
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import dkim
import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignStatus, Message, MessageState
from campaigns.senders import signing
from campaigns.sending import delivery, queue
from campaigns.tests.factories import (
    approve_for_test,
    make_campaign,
    make_contacts,
    make_sender,
)
from contacts.models import Suppression
from luxmail import crypto
from luxmail.models import AuditEvent, SecurePolicy

# Plain (rolled-back) transactions: on_commit callbacks never fire, so no Celery chain
# starts behind the test's back; batches are driven by hand.
pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


def drain(campaign: Campaign, *, rounds: int = 50) -> None:
    for _ in range(rounds):
        report = delivery.send_batch(campaign_id=campaign.pk, limit=50)
        if not report.claimed:
            break
    services.campaign_finish_if_done(campaign_id=campaign.pk)


def test_campaign_reaches_each_eligible_recipient_once(postgres, sink, admin) -> None:
    eligible = make_contacts(20, prefix="ok")
    make_contacts(5, prefix="noconsent", consent=())
    suppressed = make_contacts(3, prefix="supp")
    for cid in suppressed:
        from contacts.models import Contact

        Suppression.objects.create(
            email_bidx=Contact.objects.get(pk=cid).email_bidx, reason="manual"
        )
    from contacts.models import Contact as C

    all_ids = list(C.objects.values_list("id", flat=True))
    campaign = make_campaign(contact_ids=all_ids, actor=admin)
    assert services.campaign_start(campaign=campaign, actor=admin) == 20
    drain(campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    received = sink.recipients()
    assert sorted(received) == sorted(f"ok{i}@example.test" for i in range(20))
    assert set(Message.objects.values_list("state", flat=True)) == {MessageState.SENT}
    assert set(Message.objects.values_list("contact_id", flat=True)) == set(eligible)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"campaign.start", "campaign.sent", "phi.access"} <= actions

    # The received mail: personalized, DKIM-signed, one-click unsubscribe, VERP.
    first = sink.messages[0]
    assert first.mail_from.startswith("bounces+") and first.mail_from.endswith("@clinic.example")
    parsed = email.message_from_bytes(first.data, policy=email.policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = parsed.get_body(("html",)).get_content()
    assert "Hello" in html and 'style="color: #123456' in html.replace("color:#", "color: #")
    assert "100 Main Street" in html or campaign.sender.postal_address in html
    sender = campaign.sender
    record = signing.dns_record_value(sender.dkim_algorithm, sender.dkim_public_key).encode()
    assert dkim.verify(first.data, dnsfunc=lambda name, timeout=5: record)


def test_phi_template_needs_phi_consent_and_a_secure_policy(postgres, sink, admin) -> None:
    make_contacts(4, prefix="m", consent=("marketing",))
    phi_ok = make_contacts(3, prefix="phi", consent=("marketing", "phi_marketing"))
    from contacts.models import Contact

    html = "<p>Hi {{ contact.first_name }}, you are {{ phi.age or 'ageless' }}.</p>"
    campaign = make_campaign(
        contact_ids=list(Contact.objects.values_list("id", flat=True)),
        actor=admin,
        html=html,
        secure_policy=SecurePolicy.OPPORTUNISTIC,
    )
    with pytest.raises(services.CampaignError) as caught:
        services.campaign_start(campaign=campaign, actor=admin)
    assert "secure-delivery policy" in str(caught.value)
    services.campaign_update(
        campaign=campaign, actor=admin, secure_policy=SecurePolicy.TLS_OR_BETTER
    )
    approve_for_test(campaign)  # the policy change withdrew the approval
    assert services.campaign_start(campaign=campaign, actor=admin) == 3
    drain(campaign)
    assert sorted(Message.objects.values_list("contact_id", flat=True)) == sorted(phi_ok)


def test_lost_worker_leaves_unknown_and_claims_are_reclaimed(postgres, sink, admin) -> None:
    ids = make_contacts(10)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    # A worker claims 6, marks 2 as sending, then dies (nothing else written).
    token, claimed = queue.claim(campaign_id=campaign.pk, limit=6, lease_seconds=300)
    in_flight = [c.id for c in claimed[:2]]
    queue.mark_sending(token=token, ids=in_flight, lease_seconds=300)
    # Another worker cannot take them while the lease holds.
    report = delivery.send_batch(campaign_id=campaign.pk, limit=50)
    assert report.claimed == 4
    # The lease expires.
    Message.objects.filter(claim_token=token).update(lease_until=timezone.now() - timedelta(1))
    result = services.campaigns_recover()
    assert result["unknown"] == 2
    drain(campaign)
    states = dict(Message.objects.values_list("id", "state"))
    assert [states[i] for i in in_flight] == [MessageState.UNKNOWN] * 2
    assert list(states.values()).count(MessageState.SENT) == 8
    assert len(sink.messages) == 8
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT  # unknown is terminal until an operator acts

    # The operator resends one of them.
    services.message_resend(message=Message.objects.get(pk=in_flight[0]), actor=admin)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING
    drain(campaign)
    assert Message.objects.get(pk=in_flight[0]).state == MessageState.SENT
    assert len(sink.messages) == 9
    assert AuditEvent.objects.filter(action="message.resend").count() == 1


def test_untrusted_relay_defers_and_sends_nothing(postgres, untrusted_tls_sink, admin) -> None:
    ids = make_contacts(3)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    report = delivery.send_batch(campaign_id=campaign.pk)
    assert report.deferred == 3
    assert untrusted_tls_sink.messages == []
    for message in Message.objects.all():
        assert message.state == MessageState.DEFERRED
        assert "not trusted" in message.smtp_reply
        assert message.next_attempt_at > timezone.now()
        assert message.attempts == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING


def test_transient_and_permanent_replies(postgres, sink, admin) -> None:
    ids = make_contacts(2)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    sink.reply = "451 4.7.1 greylisted"
    delivery.send_batch(campaign_id=campaign.pk)
    assert set(Message.objects.values_list("state", flat=True)) == {MessageState.DEFERRED}
    # Not due yet: nothing is claimed.
    assert delivery.send_batch(campaign_id=campaign.pk).claimed == 0
    Message.objects.update(next_attempt_at=timezone.now())
    sink.reply = "550 5.1.1 no such user"
    delivery.send_batch(campaign_id=campaign.pk)
    # Address-level refusal at DATA: a bounce, like the same DSN (test_sync_bounces.py).
    assert set(Message.objects.values_list("state", flat=True)) == {MessageState.BOUNCED}
    assert set(Message.objects.values_list("attempts", flat=True)) == {2}
    assert services.campaign_finish_if_done(campaign_id=campaign.pk)


def test_pause_resume_cancel(postgres, sink, admin, settings) -> None:
    settings.LUXMAIL_SEND_CHUNK = 5
    ids = make_contacts(30)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    services.campaign_pause(campaign=campaign, actor=admin)
    assert delivery.send_batch(campaign_id=campaign.pk).stopped == CampaignStatus.PAUSED
    assert sink.messages == []
    services.campaign_resume(campaign=campaign, actor=admin)

    def pause_after_first_chunk(count: int) -> None:
        if Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENDING:
            services.campaign_pause(campaign=campaign, actor=admin)

    report = delivery.send_batch(campaign_id=campaign.pk, on_chunk=pause_after_first_chunk)
    assert report.sent == 5 and report.stopped == "paused"
    assert Message.objects.filter(claim_token__isnull=False).count() == 0  # released
    services.campaign_cancel(campaign=campaign, actor=admin)
    assert Message.objects.filter(state=MessageState.CANCELLED).count() == 25
    actions = list(
        AuditEvent.objects.filter(action__startswith="campaign.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[-4:] == [
        "campaign.paused",
        "campaign.resumed",
        "campaign.paused",
        "campaign.cancelled",
    ]


def test_dkim_is_required_unless_an_admin_allows(postgres, sink, admin, make_user) -> None:
    marketer = make_user("Marketer")
    sender = make_sender(admin, generate_dkim=False)
    ids = make_contacts(2)
    campaign = make_campaign(contact_ids=ids, actor=admin, sender=sender)
    with pytest.raises(services.CampaignError) as caught:
        services.campaign_start(campaign=campaign, actor=admin)
    assert "no DKIM key" in str(caught.value)
    with pytest.raises(services.CampaignError):
        services.sender_allow_without_dkim(sender=sender, allow=True, actor=marketer)
    services.sender_allow_without_dkim(sender=sender, allow=True, actor=admin)
    assert AuditEvent.objects.filter(action="sender.allow_without_dkim").exists()
    services.campaign_start(campaign=campaign, actor=admin)
    drain(campaign)
    assert len(sink.messages) == 2
    assert b"DKIM-Signature" not in sink.messages[0].data


def test_dkim_private_key_is_encrypted_at_rest(postgres, admin) -> None:
    sender = make_sender(admin)
    assert b"PRIVATE KEY" not in sender.dkim_private_key
    pem = crypto.reveal(sender, "dkim_private_key", access=crypto.secret_access("test"))
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    from campaigns.selectors import dkim_dns_record

    record = dkim_dns_record(sender)
    assert record["name"].endswith("._domainkey.clinic.example")
    assert record["value"].startswith("v=DKIM1; k=rsa; p=")


def test_footer_is_appended_when_missing(postgres, sink, admin) -> None:
    ids = make_contacts(1)
    campaign = make_campaign(contact_ids=ids, actor=admin, html="<p>Just text</p>")
    services.campaign_start(campaign=campaign, actor=admin)
    drain(campaign)
    parsed = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    assert "/u/" in html and "Unsubscribe" in html and "Main Street" in html
    assert "Unsubscribe (" in text and "/u/" in text


def test_test_send_uses_sample_data_only(postgres, sink, admin) -> None:
    ids = make_contacts(1)
    campaign = make_campaign(
        contact_ids=ids, actor=admin, html="<p>{{ phi.age }} {{ contact.first_name }}</p>"
    )
    assert (
        services.campaign_test_send(
            campaign=campaign, addresses=["seed@qa.example", "Seed@qa.example"], actor=admin
        )
        == 1
    )
    received = sink.messages[0]
    assert received.rcpt_tos == ["seed@qa.example"]
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert "Pat" in parsed.get_body(("html",)).get_content()  # sample contact, not a real one
    assert Message.objects.count() == 0
    event = AuditEvent.objects.get(action="campaign.test_send")
    assert event.details == {"addresses": 1, "accepted": 1}
    with pytest.raises(services.CampaignError):
        services.campaign_test_send(campaign=campaign, addresses=["not an address"], actor=admin)


def test_unsubscribe_and_revocation_take_effect_inside_a_running_campaign(
    postgres, sink, admin
) -> None:
    ids = make_contacts(3)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    from contacts import services as contact_services
    from contacts.models import Contact

    contact_services.suppression_add(
        reason="unsubscribe", contact=Contact.objects.get(pk=ids[0]), actor=admin
    )
    contact_services.consent_revoke(
        contact=Contact.objects.get(pk=ids[1]), purpose="marketing", actor=admin
    )
    drain(campaign)
    states = dict(Message.objects.values_list("contact_id", "state"))
    assert states == {
        ids[0]: MessageState.SKIPPED,
        ids[1]: MessageState.SKIPPED,
        ids[2]: MessageState.SENT,
    }
    assert len(sink.messages) == 1


def test_scheduled_campaigns_start_when_due(postgres, sink, admin) -> None:
    ids = make_contacts(2)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    later = timezone.now() + timedelta(hours=1)
    services.campaign_schedule(campaign=campaign, actor=admin, at=later)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED and Message.objects.count() == 0
    assert services.campaigns_start_due() == 0
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now())
    assert services.campaigns_start_due() == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING and campaign.recipients == 2
    assert AuditEvent.objects.filter(action="campaign.schedule").exists()


def test_throttle_paces_the_chains() -> None:
    # 120/min over 2 chains: a batch of 10 must take 10 s to keep the rate.
    assert delivery.pace(elapsed=2.5, sent=10, per_minute=120, chains=2) == 7.5
    assert delivery.pace(elapsed=12, sent=10, per_minute=120, chains=2) == 0
    assert delivery.pace(elapsed=0, sent=10, per_minute=None, chains=2) == 0


def test_cancel_while_a_dead_worker_holds_claims(postgres, sink, admin) -> None:
    ids = make_contacts(6)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    token, _claimed = queue.claim(campaign_id=campaign.pk, limit=4, lease_seconds=300)
    services.campaign_cancel(campaign=campaign, actor=admin)
    assert Message.objects.filter(state=MessageState.CANCELLED).count() == 2
    Message.objects.filter(claim_token=token).update(lease_until=timezone.now() - timedelta(1))
    services.campaigns_recover()
    assert Message.objects.filter(state=MessageState.CANCELLED).count() == 6
    assert sink.messages == []


def test_hostile_template_fails_its_messages_with_a_clear_reason(postgres, sink, admin) -> None:
    """A template that passes save but breaks a render limit fails each message, in the
    worker, with the limit named; no MemoryError, nothing sent, the campaign ends."""
    ids = make_contacts(2)
    doubling = "{% set x = 'ab' %}" + "{% set x = x ~ x %}" * 40
    campaign = make_campaign(contact_ids=ids, actor=admin, html=f"<p>{doubling}{{{{ x }}}}</p>")
    services.campaign_start(campaign=campaign, actor=admin)
    drain(campaign)
    assert sink.messages == []
    replies = set(Message.objects.values_list("state", "smtp_reply"))
    assert replies == {
        (
            MessageState.FAILED,
            "template: HTML body: joining text with ~ is limited to 100,000 characters",
        )
    }


def test_a_throttled_campaign_claims_one_minutes_share_per_chain(
    postgres, sink, admin, settings
) -> None:
    # 8 a minute over 4 chains: a batch of 2, not a burst of the whole batch size.
    settings.LUXMAIL_SEND_CHAINS = 4
    throttled = make_campaign(contact_ids=make_contacts(6, prefix="thr"), throttle_per_minute=8)
    services.campaign_start(campaign=throttled, actor=admin)
    assert delivery.send_batch(campaign_id=throttled.pk).claimed == 2
    # Unthrottled: the whole batch size.
    free = make_campaign(contact_ids=make_contacts(6, prefix="fre"))
    services.campaign_start(campaign=free, actor=admin)
    assert delivery.send_batch(campaign_id=free.pk).claimed == 6


def test_dkim_signer_is_loaded_once_per_key_and_a_new_key_is_used(postgres, sink, admin) -> None:
    """Loading the PEM key checks it (tens of milliseconds for RSA-2048): campaigns of
    one sender share the loaded signer, and a regenerated key replaces it."""
    sender = make_sender(admin)
    ids = make_contacts(1)
    first = make_campaign(contact_ids=ids, actor=admin, sender=sender)
    second = make_campaign(contact_ids=ids, actor=admin, sender=sender)
    for campaign in (first, second):
        services.campaign_start(campaign=campaign, actor=admin)
        campaign.refresh_from_db()
    signer = delivery.prepare(first, cache=False).signer
    assert signer is not None
    assert delivery.prepare(second, cache=False).signer is signer
    sender = services.sender_generate_dkim(
        sender=sender, actor=admin, domain=sender.dkim_domain, selector=sender.dkim_selector
    )
    second = Campaign.objects.select_related("sender").get(pk=second.pk)
    fresh = delivery.prepare(second, cache=False).signer
    assert fresh is not None and fresh is not signer
    record = signing.dns_record_value(signing.RSA, sender.dkim_public_key).encode()
    message = fresh.sign(b"From: a@clinic.example\r\nSubject: x\r\n\r\nHi\r\n")
    assert dkim.verify(message, dnsfunc=lambda name, timeout=5: record)
