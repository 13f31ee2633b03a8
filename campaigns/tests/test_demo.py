"""``campaigns.demo.populate`` is idempotent and really sends its campaign into the sink."""

from __future__ import annotations

import email

import pytest

from campaigns import demo
from campaigns.models import ApprovalState, Campaign, CampaignStatus, EmailTemplate, Message
from campaigns.services import approvals
from contacts import demo as contacts_demo

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.slow]


def test_demo_sends_its_campaign_once(postgres, admin, settings, tmp_path) -> None:
    settings.LUXMAIL_SINK_DIR = tmp_path
    contacts_demo.populate(actor=admin)
    demo.populate(actor=admin)
    campaign = Campaign.objects.get(name=demo.CAMPAIGN)
    assert campaign.status == CampaignStatus.SENT
    files = sorted(tmp_path.glob("*.eml"))
    sent = Message.objects.filter(campaign=campaign, state="sent").count()
    # The sink folder also holds the demo journey's messages (campaigns/journeys/demo.py).
    assert sent > 0 and len(files) == Message.objects.filter(state="sent").count()
    parsed = email.message_from_bytes(files[0].read_bytes())
    assert parsed["DKIM-Signature"] and parsed["List-Unsubscribe-Post"]
    assert EmailTemplate.objects.get(name=demo.PHI_TEMPLATE).phi_bearing
    demo.populate(actor=admin)
    # The newsletter and the two PHI approval campaigns, each once.
    assert Campaign.objects.filter(journey_step__isnull=True).count() == 3
    assert len(list(tmp_path.glob("*.eml"))) == len(files)


def test_demo_shows_a_phi_campaign_awaiting_approval_and_an_approved_one(
    postgres, admin, settings, tmp_path
) -> None:
    settings.LUXMAIL_SINK_DIR = tmp_path
    contacts_demo.populate(actor=admin)
    demo.populate(actor=admin)
    awaiting = approvals.approval_overview(Campaign.objects.get(name=demo.AWAITING))
    assert awaiting.approval.state == ApprovalState.PENDING
    assert awaiting.use.audience_fields and awaiting.use.template_fields
    approved = approvals.approval_overview(Campaign.objects.get(name=demo.APPROVED))
    assert approved.approved and approved.current
    assert approved.approval.decided_by.username == demo.OFFICER
