"""Issue 14, item 5: a sending campaign pauses itself on its hard-bounce, complaint or
per-provider sender-side refusal counts; Admins get an in-app notification and the
``campaign_auto_paused`` webhook event; resuming needs an explicit confirmation."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns import feedback_samples as mails
from campaigns import services
from campaigns.models import Campaign, CampaignStatus
from campaigns.sending import bounces
from campaigns.tests import conftest as campaigns_fixtures
from campaigns.tests.factories import make_campaign, make_contacts, make_sender
from luxmail.models import AuditEvent, Notification
from reporting import services as reporting_services
from reporting.models import WebhookDelivery

# The campaigns app's fixtures (a PostgreSQL check, an Admin, an SMTP sink as relay).
postgres = campaigns_fixtures.postgres
admin = campaigns_fixtures.admin
sink = campaigns_fixtures.sink

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]


def _sending_campaign(sink: Any, admin: Any, n: int) -> tuple[Campaign, dict[str, tuple[str, str]]]:
    """A campaign the real pipeline sent, put back to "sending" as if more were queued."""
    ids = make_contacts(n)
    campaign = make_campaign(
        contact_ids=ids, actor=admin, sender=make_sender(admin), marketing_id="FLU-26"
    )
    services.campaign_start(campaign=campaign, actor=admin)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SENDING)
    sent = {}
    for received in sink.messages:
        headers = received.data.split(b"\r\n\r\n", 1)[0].decode()
        sent[received.rcpt_tos[0]] = (received.mail_from, headers)
    return campaign, sent


def _feed(sent: dict[str, tuple[str, str]], recipient: str, build: Any) -> bounces.Outcome:
    verp, headers = sent[recipient]
    raw = build(verp=verp, headers=headers, recipient=recipient)
    return bounces.bounce_process(raw=raw, source="smtp", envelope_recipients=[verp])


def test_hard_bounce_rate_pauses_notifies_and_resume_needs_confirmation(
    postgres, sink, admin
) -> None:
    reporting_services.webhook_endpoint_create(
        name="Ops",
        url="https://ops.example/hook",
        event_types=["campaign_auto_paused"],
        actor=admin,
    )
    services.feedback_policy_update(
        actor=admin, autopause_min_messages=20, autopause_hard_bounce_percent="5"
    )
    campaign, sent = _sending_campaign(sink, admin, 20)
    _feed(sent, "p0@example.test", mails.multi_group_user_unknown)  # 5 %: not above
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENDING
    _feed(sent, "p1@example.test", mails.multi_group_user_unknown)  # 10 %
    paused = Campaign.objects.get(pk=campaign.pk)
    assert paused.status == CampaignStatus.PAUSED
    assert "Hard-bounce rate 10.0 %" in paused.auto_pause_reason
    assert AuditEvent.objects.filter(action="campaign.auto_paused").count() == 1
    # The campaign finished once before it was put back to "sending": that notified too.
    assert set(Notification.objects.values_list("kind", flat=True)) == {
        "campaign_finished",
        "campaign_auto_paused",
    }
    note = Notification.objects.get(kind="campaign_auto_paused")
    assert note.link == f"/campaigns/{campaign.pk}/"
    delivery = WebhookDelivery.objects.get(event_type="campaign_auto_paused")
    assert delivery.payload["data"]["campaign_id"] == campaign.pk
    assert delivery.payload["data"]["campaign_marketing_id"] == "FLU-26"

    with pytest.raises(services.TransitionError, match="paused itself"):
        services.campaign_resume(campaign=paused, actor=admin)
    resumed = services.campaign_resume(campaign=paused, actor=admin, confirm=True)
    assert resumed.status == CampaignStatus.SENDING and not resumed.auto_pause_reason
    assert resumed.health_baseline_at is not None
    # Rates count afresh after a confirmed resume: one more bounce does not pause again.
    # (The resumed chains found nothing queued and finished it; put it back to sending.)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SENDING)
    _feed(sent, "p2@example.test", mails.multi_group_user_unknown)
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENDING


def test_complaint_rate_pauses(postgres, sink, admin) -> None:
    services.feedback_policy_update(
        actor=admin, autopause_min_messages=10, autopause_complaint_percent="0.1"
    )
    campaign, sent = _sending_campaign(sink, admin, 10)
    _feed(sent, "p3@example.test", mails.arf_abuse)
    paused = Campaign.objects.get(pk=campaign.pk)
    assert paused.status == CampaignStatus.PAUSED and "Complaint rate" in paused.auto_pause_reason


def test_sender_side_blocks_from_one_provider_pause_below_the_message_minimum(
    postgres, sink, admin
) -> None:
    services.feedback_policy_update(actor=admin, autopause_provider_blocks=2)
    campaign, sent = _sending_campaign(sink, admin, 4)
    _feed(sent, "p0@example.test", mails.spamhaus_block)
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENDING
    _feed(sent, "p1@example.test", mails.spamhaus_block)
    paused = Campaign.objects.get(pk=campaign.pk)
    assert paused.status == CampaignStatus.PAUSED
    assert "bigisp.example refused 2 messages" in paused.auto_pause_reason
    # Nobody was suppressed for it.
    from contacts.models import Suppression  # test-only

    assert not Suppression.objects.exists()


def test_a_campaign_under_the_minimum_does_not_pause(postgres, sink, admin) -> None:
    campaign, sent = _sending_campaign(sink, admin, 5)  # default minimum: 500 messages
    for i in range(3):
        _feed(sent, f"p{i}@example.test", mails.multi_group_user_unknown)
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENDING
