"""PHI approval in a real browser (issue 17): the author cannot schedule a PHI campaign,
requests approval, a Compliance Officer sees exactly which PHI fields it reads and
approves, the author schedules it; then a template edit withdraws the approval and
sends the campaign back to draft.

Screenshots: ``var/screenshots/approval-*.png``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from campaigns.models import ApprovalState, Campaign, CampaignStatus
from campaigns.services import approvals
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import roles
from luxmail.testing import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHI_HTML = (
    "<p>Dear {{ contact.first_name }},</p>"
    "<p>Your next appointment: {{ phi.next_appointment|default('none yet') }}.</p>"
)


def test_request_approve_schedule_and_an_edit_withdraws(
    browser_page, live_server, make_user
) -> None:
    page = browser_page  # the author's browser; the officer signs in in a second one
    second = page.context.browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    officer_page = second.new_page()
    officer_page.set_default_timeout(15_000)
    author = make_user(roles.PHI_MARKETER)
    officer = make_user(roles.COMPLIANCE_OFFICER)
    ids = make_contacts(4, prefix="ok", consent=("marketing", "phi_marketing"))
    campaign: Campaign = make_campaign(contact_ids=ids, actor=author, html=PHI_HTML, approved=False)
    review = f"/campaigns/{campaign.pk}/review/"
    approval = f"/campaigns/{campaign.pk}/approval/"
    page.on("dialog", lambda dialog: dialog.accept())
    at = timezone.localtime() + dt.timedelta(days=3)

    # 1. The author cannot schedule it yet, and is told why.
    sign_in(page, author, review)
    page.get_by_text("a Compliance Officer who did not write it must approve it").wait_for()
    page.fill("#id_at", at.strftime("%Y-%m-%dT%H:%M"))
    page.click("button:has-text('Send or schedule')")
    page.get_by_text("Compliance Officer must approve it").first.wait_for()
    # 2. The author requests approval on the approval screen.
    page.click("text=Open the approval screen")
    page.wait_for_url(f"**{approval}")
    assert page.inner_text("#template-phi-fields") == "phi.next_appointment"
    assert page.inner_text("#audience-phi-fields") == "none"
    assert page.inner_text("#approval-recipients").startswith("4")
    page.click("button:has-text('Request approval')")
    page.get_by_text("Approval requested").wait_for()
    screenshot(page, "approval-1-requested")

    # 3. A Compliance Officer approves.
    sign_in(officer_page, officer, approval)
    officer_page.get_by_text("Awaiting approval").first.wait_for()
    officer_page.fill("#id_note", "Minimum necessary: one appointment date.")
    officer_page.click("button[value=approve]")
    officer_page.get_by_text("Approved.").first.wait_for()
    screenshot(officer_page, "approval-2-approved")
    # The trail reads as words for the officer, filtered to this campaign.
    officer_page.goto(f"/audit/?target=campaigns.campaign:{campaign.uuid}")
    officer_page.locator("#audit-events").get_by_text("PHI campaign approved").wait_for()
    officer_page.locator("#audit-events").get_by_text("PHI approval requested").wait_for()
    screenshot(officer_page, "approval-audit-trail")
    second.close()
    assert approvals.current_approval(campaign).state == ApprovalState.APPROVED

    # 4. The author schedules it.
    page.goto(review)
    page.get_by_text("Approved by a Compliance Officer").wait_for()
    page.fill("#id_at", at.strftime("%Y-%m-%dT%H:%M"))
    page.click("button:has-text('Send or schedule')")
    page.wait_for_url(re.compile(rf".*/campaigns/{campaign.pk}/$"))
    page.get_by_text("The campaign is scheduled.").wait_for()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED

    # 5. Editing the template withdraws the approval and unschedules the campaign.
    page.goto(f"/campaigns/templates/{campaign.template_id}/")
    # Prepended: the template carries the organization's locked footer, which must stay.
    page.fill("#id_html", "<p>{{ phi.age|default('') }}</p>" + page.input_value("#id_html"))
    page.click("button:has-text('Save template')")
    page.get_by_text("Template saved").wait_for()
    page.goto(approval)
    page.get_by_text("Withdrawn").first.wait_for()
    assert page.get_attribute("#approval-state", "data-state") == "withdrawn-stale"
    assert "phi.age" in page.inner_text("#template-phi-fields")
    screenshot(page, "approval-3-withdrawn")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
