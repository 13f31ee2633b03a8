"""In a real browser: a campaign that paused itself on its bounce rate (real DSNs sent
over SMTP to the bounce server) shows why, the navigation counts the notification, and
resuming needs the explicit confirmation.

Screenshots: ``var/screenshots/autopause-*.png``.
"""

from __future__ import annotations

import smtplib

import pytest
from aiosmtpd.controller import Controller

from campaigns import feedback_samples as mails
from campaigns import services
from campaigns.management.commands.run_bounce_server import BounceHandler
from campaigns.models import Campaign, CampaignStatus
from campaigns.tests import conftest as campaigns_fixtures
from campaigns.tests.factories import make_campaign, make_contacts, make_sender
from luxmail.testing import free_port, screenshot, sign_in

# The campaigns app's fixtures (a PostgreSQL check, an Admin, an SMTP sink as relay).
postgres = campaigns_fixtures.postgres
admin = campaigns_fixtures.admin
sink = campaigns_fixtures.sink

pytestmark = [
    pytest.mark.browser,
    pytest.mark.smtp,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_auto_paused_campaign_shows_why_and_resumes_only_when_confirmed(
    postgres, browser_page, sink, admin
) -> None:
    page = browser_page
    services.feedback_policy_update(actor=admin, autopause_min_messages=10)
    ids = make_contacts(10)
    campaign = make_campaign(
        contact_ids=ids, actor=admin, sender=make_sender(admin, name="Clinic news")
    )
    Campaign.objects.filter(pk=campaign.pk).update(name="Flu reminders")
    services.campaign_start(campaign=campaign, actor=admin)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SENDING)
    port = free_port()
    server = Controller(BounceHandler(), hostname="127.0.0.1", port=port)
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for received in sink.messages[:2]:
                verp = received.mail_from
                headers = received.data.split(b"\r\n\r\n", 1)[0].decode()
                raw = mails.multi_group_user_unknown(
                    verp=verp, headers=headers, recipient=received.rcpt_tos[0]
                )
                smtp.sendmail("", [verp], raw)
    finally:
        server.stop()
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.PAUSED

    sign_in(page, admin)
    badge = page.get_by_test_id("notifications-link")
    # Two: the campaign first finished (eager send), then, put back to sending, paused itself.
    badge.locator("mark").filter(has_text="2").wait_for()
    badge.click()
    page.get_by_role("link", name="Flu reminders").first.click()
    alert = page.get_by_test_id("auto-pause")
    alert.wait_for()
    assert "Hard-bounce rate 10.0 %" in alert.inner_text()
    assert page.locator("[data-status]").inner_text() == "Paused"
    screenshot(page, "autopause-1-campaign")

    # Without the confirmation the browser does not submit; the campaign stays paused.
    page.get_by_role("button", name="Resume").click()
    assert page.get_by_test_id("resume-confirm").evaluate("e => !e.validity.valid")
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.PAUSED

    page.get_by_test_id("resume-confirm").check()
    page.get_by_role("button", name="Resume").click()
    page.get_by_text("Resumed.").wait_for()
    assert Campaign.objects.get(pk=campaign.pk).auto_pause_reason == ""

    page.goto("/campaigns/deliverability/")
    page.get_by_test_id("health-overall").wait_for()
    assert page.locator("#bounces tbody tr").count() == 2
    screenshot(page, "autopause-2-deliverability")
