"""In a real browser: the pre-send check blocks a campaign with a broken link and a
missing DMARC record; a PHI Marketer previews it for a sample contact at desktop and
mobile width; an Admin overrides the check with a note, and the campaign schedules.

The DNS server and the web server are real local servers (campaigns/tests/presend_fixtures.py).
Screenshots: ``var/screenshots/presend-*.png``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, PresendOverride
from campaigns.tests.factories import make_campaign, make_contacts
from campaigns.tests.presend_fixtures import authenticated_sender, dns_server, web_server
from luxmail import roles
from luxmail.testing import screenshot, sign_in

__all__ = ["dns_server", "web_server"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BODY = (
    "<html><body><p>Dear {{ contact.first_name }}, flu shots are available at our clinic "
    "from Monday. Book a time that suits you; walk-ins are welcome every weekday morning "
    "and on Saturdays before noon.</p>"
)


def test_presend_check_blocks_until_an_admin_overrides(
    browser_page, live_server, dns_server, web_server, make_user
) -> None:
    page = browser_page
    admin = make_user(roles.ADMIN)
    marketer = make_user(roles.PHI_MARKETER)
    sender = authenticated_sender(dns_server, admin, dmarc=False)
    contact_id = make_contacts(3, first_name="Zelda")[0]
    campaign = make_campaign(
        contact_ids=[contact_id],
        actor=admin,
        sender=sender,
        subject="Flu shots this week",
        preheader="Walk in any weekday",
        html=BODY + f'<p><a href="{web_server}/ok">Book</a> · '
        f'<a href="{web_server}/old-page">Old schedule</a></p></body></html>',
    )
    review = f"/campaigns/{campaign.pk}/review/"

    # 1. The check fails on the broken link and the missing DMARC record.
    sign_in(page, marketer, review)
    links_row = page.locator('#presend-items tr[data-item="links"]')
    assert links_row.get_attribute("data-verdict") == "fail"
    assert "/old-page" in links_row.inner_text()
    dmarc_row = page.locator('#presend-items tr[data-item="dmarc"]')
    assert dmarc_row.get_attribute("data-verdict") == "fail"
    assert dmarc_row.locator("a").get_attribute("href") == f"/campaigns/senders/{sender.pk}/"
    assert (
        page.locator('#presend-items tr[data-item="spf"]').get_attribute("data-verdict") == "pass"
    )
    assert "Scheduling is blocked" in page.locator("#presend-status").inner_text()

    # 2. Preview for a sample contact (PHI-permitted role), desktop and mobile widths.
    page.fill("#id_contact", str(contact_id))
    page.click("button:has-text('Show preview')")
    page.wait_for_url(re.compile(rf".*contact={contact_id}.*"))
    for frame_id in ("#preview-desktop", "#preview-mobile"):
        page.frame_locator(frame_id).locator("p").filter(has_text="Dear Zelda").wait_for()
    page.frame_locator("#preview-text").locator("pre").filter(has_text="Dear Zelda").wait_for()
    assert page.locator("#preview-mobile").bounding_box()["width"] < 400  # type: ignore[index]
    screenshot(page, "presend-1-blocked-and-preview")

    # 3. Scheduling is refused while the check fails.
    page.on("dialog", lambda dialog: dialog.accept())
    at = timezone.localtime() + dt.timedelta(days=2)
    page.fill("#id_at", at.strftime("%Y-%m-%dT%H:%M"))
    page.click("button:has-text('Send or schedule')")
    page.get_by_text("The pre-send check fails").wait_for()
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.DRAFT
    assert page.locator("#presend-override").count() == 0  # a Marketer cannot override

    # 4. An Admin overrides with a note; the campaign can be scheduled.
    browser = page.context.browser
    assert browser is not None
    admin_context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    page = admin_context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, admin, review)
    page.fill("#presend-override textarea", "Old page redirects soon; DMARC goes live Monday")
    page.click("button:has-text('Override the failing items')")
    page.get_by_text("The failing items are overridden").wait_for()
    assert "overridden by an Admin" in page.locator("#presend-status").inner_text()
    screenshot(page, "presend-2-overridden")
    page.fill("#id_at", at.strftime("%Y-%m-%dT%H:%M"))
    page.click("button:has-text('Send or schedule')")
    page.wait_for_url(re.compile(rf".*/campaigns/{campaign.pk}/$"))
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SCHEDULED
    assert sorted(PresendOverride.objects.get().items) == ["dmarc", "links"]
    admin_context.close()
