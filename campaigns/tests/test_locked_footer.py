"""Marketing needs the organization's locked footer (issue 19 item 2): scheduling is
refused without it (service, review page, API), the pre-send check shows it as a failing
item with a fix link, "Add the organization footer" fixes a template in one click, and
transactional messages and transactional journeys are not affected."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import services
from campaigns.content import footer
from campaigns.journeys import definition
from campaigns.models import CampaignStatus, EmailTemplate
from campaigns.presend.items import Verdict
from campaigns.tests.factories import HTML, make_campaign, make_contacts
from campaigns.tests.journey_factories import reminder_definition
from luxmail import roles
from luxmail.api.services import api_key_create
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db

FUTURE = dt.timedelta(days=2)


def _bare_template(admin) -> EmailTemplate:
    return services.template_create(
        name=f"Bare {uuid.uuid4().hex[:6]}", subject="Hello", html=HTML, actor=admin
    )


def test_footer_insert_goes_before_body_end_once() -> None:
    placed = footer.footer_insert("<html><BODY><p>Hi</p></Body></html>")
    assert placed.index(footer.FOOTER_HTML) < placed.lower().index("</body>")
    assert footer.footer_insert(placed) == placed
    assert footer.footer_insert("<p>Hi</p>") == "<p>Hi</p>" + footer.FOOTER_HTML
    assert footer.footer_check(placed) is footer.FooterState.PRESENT


def test_scheduling_is_refused_without_the_footer_and_accepted_with_it(admin) -> None:
    bare = make_campaign(contact_ids=make_contacts(1), actor=admin, locked_footer=False)
    with pytest.raises(services.LockedFooterMissing, match="no organization footer"):
        services.campaign_schedule(campaign=bare, actor=admin, at=timezone.now() + FUTURE)
    with pytest.raises(services.LockedFooterMissing):
        services.campaign_start(campaign=bare, actor=admin)
    bare.refresh_from_db()
    assert bare.status == CampaignStatus.DRAFT

    ok = make_campaign(contact_ids=make_contacts(1, prefix="ok"), actor=admin)
    assert ok.template.has_locked_footer
    scheduled = services.campaign_schedule(campaign=ok, actor=admin, at=timezone.now() + FUTURE)
    assert scheduled.status == CampaignStatus.SCHEDULED


def test_api_schedule_without_the_footer_is_409_with_a_code(admin) -> None:
    campaign = make_campaign(contact_ids=make_contacts(1), actor=admin, locked_footer=False)
    issued = api_key_create(name="footer", scopes=["campaigns:send", "campaigns:read"], actor=admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/schedule/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "locked-footer-missing"
    assert "organization footer" in response.json()["detail"]
    shown = client.get(f"/api/v1/templates/{campaign.template_id}/").json()
    assert shown["has_locked_footer"] is False


def test_presend_item_fails_with_a_fix_link_and_passes_with_the_footer(settings, admin) -> None:
    settings.LUXMAIL_LINK_CHECK = "off"
    bare = make_campaign(contact_ids=make_contacts(1), actor=admin, locked_footer=False)
    check = services.presend_check(campaign=bare, enqueue=False)
    item = next(i for i in check.items if i.key == "locked_footer")
    assert item.verdict == Verdict.FAIL and check.blocked
    assert item.fix_url.startswith(f"/campaigns/templates/{bare.template_id}/add-footer/")
    assert f"next=%2Fcampaigns%2F{bare.pk}%2Freview%2F" in item.fix_url
    assert item.fix_label == "Add the organization footer"

    ok = make_campaign(contact_ids=make_contacts(1, prefix="ok"), actor=admin)
    check = services.presend_check(campaign=ok, enqueue=False)
    assert next(i for i in check.items if i.key == "locked_footer").verdict == Verdict.PASS


def test_an_admin_override_does_not_lift_the_footer_rule(settings, admin) -> None:
    settings.LUXMAIL_LINK_CHECK = "off"
    campaign = make_campaign(contact_ids=make_contacts(1), actor=admin, locked_footer=False)
    services.presend_override(campaign=campaign, actor=admin, note="try anyway")
    with pytest.raises(services.LockedFooterMissing):
        services.presend_require(campaign=campaign)


def test_review_page_refuses_then_add_footer_fixes_in_one_click(
    settings, staff_client, admin
) -> None:
    settings.LUXMAIL_LINK_CHECK = "off"
    client = staff_client(roles.MARKETER)
    campaign = make_campaign(contact_ids=make_contacts(2), actor=admin, locked_footer=False)
    review = f"/campaigns/{campaign.pk}/review/"

    refused = client.post(f"/campaigns/{campaign.pk}/schedule/", {"at": ""}, follow=True)
    assert refused.redirect_chain[-1][0] == review
    assert "has no organization footer" in refused.content.decode()
    assert 'data-item="locked_footer" data-verdict="fail"' in refused.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT

    add_url = f"/campaigns/templates/{campaign.template_id}/add-footer/"
    page = client.get(add_url, {"next": review})
    assert b'id="add-footer-form"' in page.content
    done = client.post(add_url, {"next": review})
    assert done.status_code == 302 and done.url == review
    template = EmailTemplate.objects.get(pk=campaign.template_id)
    assert template.has_locked_footer and template.version == 2
    assert footer.footer_check(template.html) is footer.FooterState.PRESENT
    assert AuditEvent.objects.filter(
        action="template.update", target_id=str(template.uuid)
    ).exists()

    after = client.get(review)
    assert 'data-item="locked_footer" data-verdict="pass"' in after.content.decode()
    services.campaign_schedule(campaign=campaign, actor=admin, at=timezone.now() + FUTURE)


def test_add_footer_ignores_a_foreign_next_and_is_idempotent(staff_client, admin) -> None:
    client = staff_client(roles.MARKETER)
    template = _bare_template(admin)
    edit = client.get(f"/campaigns/templates/{template.pk}/")
    assert b"Add the organization footer" in edit.content
    url = f"/campaigns/templates/{template.pk}/add-footer/"
    done = client.post(url, {"next": "https://evil.example/x"})
    assert done.url == f"/campaigns/templates/{template.pk}/"
    template.refresh_from_db()
    again = services.template_add_footer(template=template, actor=admin)
    assert again.version == template.version == 2
    assert b"Add the organization footer" not in client.get(done.url).content


def test_viewer_cannot_add_the_footer(staff_client, admin) -> None:
    template = _bare_template(admin)
    response = staff_client(roles.VIEWER).post(f"/campaigns/templates/{template.pk}/add-footer/")
    assert response.status_code == 403
    template.refresh_from_db()
    assert not template.has_locked_footer


def test_marketing_journeys_need_the_footer_transactional_ones_do_not(admin) -> None:
    bare = _bare_template(admin)
    marketing = definition.clean(reminder_definition(actor=admin, first=bare))
    found = [p.message for p in definition.problems(marketing)]
    assert any("has no organization footer" in m for m in found)
    transactional = definition.clean(
        {**reminder_definition(actor=admin, first=bare), "consent": "transactional"}
    )
    assert not [p for p in definition.problems(transactional) if "footer" in p.message]


def test_campaign_form_marks_templates_without_the_footer(staff_client, admin) -> None:
    bare = _bare_template(admin)
    with_footer = services.template_create(
        name=f"Footed {uuid.uuid4().hex[:6]}",
        subject="Hello",
        html=footer.footer_insert(HTML),
        actor=admin,
    )
    page = staff_client(roles.MARKETER).get("/campaigns/new/").content.decode()
    assert f"{bare.name} (no footer — transactional only)" in page
    assert f">{with_footer.name}</option>" in page
    # The field says how to fix it.
    assert "Add the organization footer" in page
