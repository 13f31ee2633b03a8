"""``campaigns.demo.populate`` is idempotent and really sends its campaign into the sink."""

from __future__ import annotations

import email

import pytest

from campaigns import demo
from campaigns.models import Campaign, CampaignStatus, EmailTemplate, Message
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
    assert Campaign.objects.filter(journey_step__isnull=True).count() == 1
    assert len(list(tmp_path.glob("*.eml"))) == len(files)
