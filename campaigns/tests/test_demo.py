"""``campaigns.demo.populate`` is idempotent and really sends its campaign into the sink."""

from __future__ import annotations

import email

import pytest

from campaigns import demo
from campaigns.models import (
    ApprovalState,
    BounceEvent,
    Campaign,
    CampaignStatus,
    EditorBlock,
    EmailTemplate,
    Message,
    SenderEvent,
    UnparsedFeedback,
)
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
    # Demo feedback turned a few delivered newsletter messages into bounced/failed ones.
    delivered = Message.objects.filter(state__in=["sent", "bounced", "failed"]).count()
    assert sent > 0 and len(files) == delivered
    parsed = email.message_from_bytes(files[0].read_bytes())
    assert parsed["DKIM-Signature"] and parsed["List-Unsubscribe-Post"]
    assert EmailTemplate.objects.get(name=demo.PHI_TEMPLATE).phi_bearing
    # The visual editor (issue 19): a library template with the locked footer, a block.
    assert EmailTemplate.objects.get(name=demo.VISUAL_TEMPLATE).has_locked_footer
    assert EditorBlock.objects.filter(name=demo.DEMO_BLOCK).count() == 1
    # Feedback (issue 14): bounces with reasons, an unread mail, an auto-paused campaign.
    assert BounceEvent.objects.filter(campaign=campaign).exclude(reason="").count() >= 5
    assert UnparsedFeedback.objects.count() == 1
    assert SenderEvent.objects.filter(kind="auth_failure_report").exists()
    paused = Campaign.objects.get(name=demo.PAUSED_CAMPAIGN)
    assert paused.status == CampaignStatus.PAUSED and paused.auto_pause_reason
    demo.populate(actor=admin)
    # The newsletter, the auto-paused flu reminder, the two PHI approval campaigns, the
    # pre-send check draft (campaigns/review_demo.py), the A/B test (the campaign and its
    # two variants) and the local-time send, each once.
    assert Campaign.objects.filter(journey_step__isnull=True).count() == 9
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
