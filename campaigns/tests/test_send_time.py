"""A "Send at" in the past is refused, and every time carries the organization's zone
(issue 12 item 6)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import CampaignStatus, Message
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import roles
from luxmail.api.services import api_key_create

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]

ZONE = "America/New_York"


@pytest.fixture
def org_zone(settings):
    settings.TIME_ZONE = ZONE
    return ZONE


def test_service_refuses_a_past_send_time(postgres, sink, admin, org_zone) -> None:
    campaign = make_campaign(contact_ids=make_contacts(2), actor=admin)
    with pytest.raises(services.CampaignError) as refused:
        services.campaign_schedule(
            campaign=campaign, actor=admin, at=timezone.now() - timedelta(hours=1)
        )
    assert "is in the past" in str(refused.value) and ZONE in str(refused.value)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert not Message.objects.filter(campaign=campaign).exists()
    assert sink.messages == []


def test_schedule_form_refuses_a_past_time_and_shows_the_zone(
    postgres, sink, admin, staff_client, org_zone
) -> None:
    campaign = make_campaign(contact_ids=make_contacts(2), actor=admin)
    client = staff_client(roles.MARKETER)
    review = client.get(f"/campaigns/{campaign.pk}/review/")
    assert f"Time zone: {ZONE}" in review.content.decode()
    past = timezone.localtime() - timedelta(days=1)
    response = client.post(
        f"/campaigns/{campaign.pk}/schedule/", {"at": past.strftime("%Y-%m-%dT%H:%M")}
    )
    assert response.status_code == 302
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("is in the past" in m and ZONE in m for m in shown), shown
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and sink.messages == []

    # A future time is scheduled, and the campaign page shows it with the zone.
    later = timezone.localtime() + timedelta(days=2)
    client.post(f"/campaigns/{campaign.pk}/schedule/", {"at": later.strftime("%Y-%m-%dT%H:%M")})
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert f"scheduled for {later.strftime('%Y-%m-%d %H:%M')} {ZONE}" in page
    listing = client.get("/campaigns/").content.decode()
    assert f"{timezone.localtime(campaign.created_at).strftime('%Y-%m-%d %H:%M')} {ZONE}" in (
        listing
    )


def test_api_refuses_a_past_send_time(postgres, sink, admin) -> None:
    campaign = make_campaign(contact_ids=make_contacts(1), actor=admin)
    issued = api_key_create(name="t", scopes=["campaigns:read", "campaigns:send"], actor=admin)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    past = (timezone.now() - timedelta(minutes=5)).isoformat()
    response = api.post(f"/api/v1/campaigns/{campaign.pk}/schedule/", {"at": past}, format="json")
    assert response.status_code == 400
    assert "is in the past" in response.json()["detail"]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and sink.messages == []
