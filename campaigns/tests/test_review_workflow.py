"""The review page's preview and test send, the preheader, duplicating a campaign, the
calendar, the campaign list's filters and the links between a campaign and its report."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.content.preheader import preheader_html, with_preheader
from campaigns.models import Campaign, CampaignStatus, Message
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import org, roles
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db

HTML = "<html><body><p>Hi {{ contact.first_name }}</p></body></html>"


def test_preheader_is_escaped_and_cannot_open_a_template_expression() -> None:
    hostile = "{{ phi.diagnosis }} <script>alert(1)</script> {% for x in y %}" + "x" * 500
    span = preheader_html(hostile)
    assert "{{" not in span and "{%" not in span and "<script>" not in span
    assert span.count("x") <= 200
    placed = with_preheader(HTML, "Your flu shot is ready")
    assert placed.index("<body>") < placed.index("Your flu shot is ready") < placed.index("<p>Hi")
    assert with_preheader("<p>no body</p>", "Soon").startswith('<span class="preheader"')
    assert with_preheader(HTML, "   ") == HTML


def test_frozen_message_carries_the_preheader(postgres, admin) -> None:
    campaign = make_campaign(
        contact_ids=make_contacts(1), actor=admin, html=HTML, preheader="Book before Friday"
    )
    services.campaign_start(campaign=campaign, actor=admin)
    campaign.refresh_from_db()
    assert 'class="preheader"' in campaign.frozen_html
    assert "Book before Friday" in campaign.frozen_html


def test_test_send_goes_to_the_seed_list_marked_test(postgres, sink, admin) -> None:
    org.org_settings_update(actor=admin, seed_addresses="qa1@seed.example\nqa2@seed.example")
    campaign = make_campaign(
        contact_ids=make_contacts(1), actor=admin, html=HTML, preheader="Seed preview"
    )
    accepted = services.campaign_test_send(campaign=campaign, addresses=[], actor=admin)
    assert accepted == 2
    assert sorted(sink.recipients()) == ["qa1@seed.example", "qa2@seed.example"]
    parsed = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default)
    assert str(parsed["Subject"]).startswith("[Test] ")
    assert "Seed preview" in parsed.get_body(("html",)).get_content()
    assert Message.objects.count() == 0  # never in reports


def test_review_page_shows_check_preview_frames_and_seed_list(postgres, staff_client) -> None:
    client = staff_client(roles.ADMIN)
    org.org_settings_update(actor=client.user, seed_addresses="qa@seed.example")
    campaign = make_campaign(contact_ids=make_contacts(2), actor=client.user, html=HTML)
    page = client.get(f"/campaigns/{campaign.pk}/review/").content.decode()
    assert 'id="presend-items"' in page and 'data-item="links"' in page
    assert 'id="preview-desktop"' in page and 'id="preview-mobile"' in page
    assert "part=text" in page and 'sandbox="allow-same-origin"' in page
    assert 'value="qa@seed.example"' in page


def test_preview_frame_for_a_contact_needs_phi_permission_and_is_audited(
    postgres, staff_client
) -> None:
    marketer = staff_client(roles.MARKETER)
    contact_id = make_contacts(1, first_name="Zelda")[0]
    campaign = make_campaign(
        contact_ids=[contact_id], actor=marketer.user, html=HTML, preheader="Soon at your clinic"
    )
    sample = marketer.get(f"/campaigns/{campaign.pk}/preview/")
    assert b"Hi Pat" in sample.content
    assert "script-src 'none'" in sample["Content-Security-Policy"]
    denied = marketer.get(f"/campaigns/{campaign.pk}/preview/?contact={contact_id}")
    assert b"Zelda" not in denied.content and b"PHI-permitted" in denied.content

    phi = staff_client(roles.PHI_MARKETER)
    shown = phi.get(f"/campaigns/{campaign.pk}/preview/?contact={contact_id}")
    assert b"Hi Zelda" in shown.content
    event = AuditEvent.objects.get(action="phi.access")
    assert event.details["contact_id"] == contact_id
    text = phi.get(f"/campaigns/{campaign.pk}/preview/?part=text")
    assert b"preview-text-part" in text.content and b"<p>Hi" not in text.content
    assert b"Soon at your clinic" not in text.content  # the preheader is HTML-only
    assert b"Soon at your clinic" in phi.get(f"/campaigns/{campaign.pk}/preview/").content
    missing = phi.get(f"/campaigns/{campaign.pk}/preview/?contact={contact_id}&missing=on")
    assert b"would be skipped" in missing.content
    hostile = phi.get(f"/campaigns/{campaign.pk}/preview/?contact=1e999")
    assert hostile.status_code == 200 and b"a number" in hostile.content


def test_duplicate_makes_a_draft_with_the_same_settings(postgres, staff_client) -> None:
    client = staff_client(roles.MARKETER)
    campaign = make_campaign(
        contact_ids=make_contacts(2), actor=client.user, html=HTML, preheader="Hello"
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SENT)
    response = client.post(f"/campaigns/{campaign.pk}/duplicate/")
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.url == f"/campaigns/{copy.pk}/edit/"
    assert copy.status == CampaignStatus.DRAFT and copy.name == f"Copy of {campaign.name}"
    assert copy.template_id == campaign.template_id and copy.preheader == "Hello"
    assert list(copy.lists.all()) == list(campaign.lists.all())
    assert copy.frozen_html == "" and copy.recipients == 0
    again = services.campaign_duplicate(campaign=campaign, actor=client.user)
    assert again.name == f"Copy of {campaign.name} (2)"
    assert AuditEvent.objects.filter(action="campaign.duplicate").count() == 2


def test_list_filters_and_search(postgres, staff_client) -> None:
    client = staff_client(roles.MARKETER)
    ids = make_contacts(1)
    flu = make_campaign(contact_ids=ids, actor=client.user, subject="Flu shots are here")
    other = make_campaign(contact_ids=ids, actor=client.user, subject="Newsletter")
    Campaign.objects.filter(pk=other.pk).update(status=CampaignStatus.SENT)
    by_subject = client.get("/campaigns/?q=flu+shots").content.decode()
    assert flu.name in by_subject and other.name not in by_subject
    by_status = client.get("/campaigns/?status=sent").content.decode()
    assert other.name in by_status and flu.name not in by_status
    by_sender = client.get(f"/campaigns/?sender={flu.sender_id}").content.decode()
    assert flu.name in by_sender and other.name not in by_sender
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    future = client.get(f"/campaigns/?date_from={tomorrow}").content.decode()
    assert flu.name not in future and "No campaign matches" in future
    backwards = client.get(f"/campaigns/?date_from={tomorrow}&date_to=2020-01-01")
    assert backwards.status_code == 200 and b"start date is after" in backwards.content
    hostile = client.get("/campaigns/?q=" + "%25" * 5000 + "&status=nope&date_from=x")
    assert hostile.status_code == 200


def test_calendar_shows_scheduled_and_sent_campaigns(postgres, staff_client) -> None:
    client = staff_client(roles.MARKETER)
    ids = make_contacts(1)
    scheduled = make_campaign(contact_ids=ids, actor=client.user)
    sent = make_campaign(contact_ids=ids, actor=client.user)
    draft = make_campaign(contact_ids=ids, actor=client.user)
    when = timezone.make_aware(dt.datetime(2031, 3, 14, 9, 0))
    Campaign.objects.filter(pk=scheduled.pk).update(
        status=CampaignStatus.SCHEDULED, scheduled_at=when
    )
    Campaign.objects.filter(pk=sent.pk).update(
        status=CampaignStatus.SENT, started_at=when + dt.timedelta(days=2)
    )
    page = client.get("/campaigns/calendar/?month=2031-03").content.decode()
    assert "March 2031" in page
    day14 = page.split('data-date="2031-03-14"')[1].split("</td>")[0]
    assert scheduled.name in day14
    day16 = page.split('data-date="2031-03-16"')[1].split("</td>")[0]
    assert sent.name in day16
    assert draft.name not in page
    assert client.get("/campaigns/calendar/?month=2031-13").status_code == 200


def test_sent_campaign_links_to_its_report_and_back(postgres, sink, staff_client) -> None:
    client = staff_client(roles.ADMIN)
    campaign = make_campaign(contact_ids=make_contacts(1), actor=client.user, html=HTML)
    services.campaign_start(campaign=campaign, actor=client.user)
    detail = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert f"/reports/?campaign={campaign.pk}" in detail
    report = client.get(f"/reports/?campaign={campaign.pk}").content.decode()
    assert f'href="/campaigns/{campaign.pk}/"' in report
