"""Sending by local time in a real browser (issue #19 item 6): a marketer schedules a
campaign for 09:00 in each recipient's time zone, sees the planned delivery curve on
the campaign page, and, on a simulated clock driving the real send step and relay, a
contact in Berlin receives it at 09:00 Berlin time and one in New York (the
organization's default zone) at 09:00 New York time.

Screenshots: ``var/screenshots/local-time-*.png``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
from zoneinfo import ZoneInfo

import pytest
import time_machine

from campaigns import services
from campaigns.models import Campaign, CampaignStatus, Message
from campaigns.sending import delivery
from campaigns.tests.conftest import sink  # noqa: F401 - the real aiosmtpd relay
from campaigns.tests.factories import make_campaign, make_contacts
from contacts.models import Contact
from luxmail import org, roles
from luxmail.testing import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = dt.timedelta(minutes=1)


def _nine(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9, 0), tzinfo=zone).astimezone(UTC)


def _send_step(campaign: Campaign) -> None:
    """What the send workers run when woken (batches until nothing is due)."""
    while delivery.send_batch(campaign_id=campaign.pk, limit=50).claimed:
        pass
    services.campaign_finish_if_done(campaign_id=campaign.pk)


def _arrivals(sink) -> dict[str, str]:  # noqa: F811 - the fixture's type
    """Recipient -> the delivery's Date header in the recipient's own zone."""
    zones = {"lt0@example.test": BERLIN, "lt1@example.test": NEW_YORK}
    arrivals = {}
    for received in sink.messages:
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        sent = email.utils.parsedate_to_datetime(str(parsed["Date"]))
        for rcpt in received.rcpt_tos:
            arrivals[rcpt] = sent.astimezone(zones[rcpt]).strftime("%H:%M")
    return arrivals


def test_schedule_at_nine_local_and_two_time_zones_receive_it_at_their_nine(
    browser_page,
    live_server,
    make_user,
    sink,  # noqa: F811
) -> None:
    page = browser_page
    marketer = make_user(roles.ADMIN)
    berlin, new_york = make_contacts(2, prefix="lt")
    Contact.objects.filter(pk=berlin).update(time_zone="Europe/Berlin")
    Contact.objects.filter(pk=new_york).update(time_zone="")  # the organization's default
    org.org_settings_update(actor=None, contact_default_time_zone="America/New_York")
    campaign = make_campaign(contact_ids=[berlin, new_york], actor=marketer, subject="Flu shots")
    # Two days ahead: contacts and consents exist at real time, the send day lies after.
    day = (dt.datetime.now(UTC) + dt.timedelta(days=2)).date()
    berlin_nine, new_york_nine = _nine(day, BERLIN), _nine(day, NEW_YORK)

    sign_in(page, marketer, f"/campaigns/{campaign.pk}/")
    page.click("text=Send by local time…")
    page.fill("#id_local_date", day.isoformat())
    page.fill("#id_local_time", "09:00")
    page.click("#schedule-local")
    page.get_by_text("Scheduled by local time.").wait_for()
    page.click(f"h1 a:has-text('{campaign.name}')")
    assert "at 09:00 in each recipient's time zone" in page.inner_text("#local-time-status")
    rows = page.locator("#delivery-curve-table tbody tr")
    assert rows.count() == 2  # one hour for Berlin's 09:00, one for New York's
    assert [rows.nth(i).locator("td").nth(1).inner_text() for i in range(2)] == ["1", "1"]
    screenshot(page, "local-time-1-curve")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED

    # The simulated clock: the scheduler starts it, the send step runs around each 09:00.
    with time_machine.travel(campaign.scheduled_at + dt.timedelta(seconds=30), tick=False):
        assert services.campaigns_start_due() == 1
        _send_step(campaign)
    for moment, expected in (
        (berlin_nine - MINUTE, {}),
        (berlin_nine + MINUTE, {"lt0@example.test": "09:01"}),
        (new_york_nine - MINUTE, {"lt0@example.test": "09:01"}),
        (new_york_nine + MINUTE, {"lt0@example.test": "09:01", "lt1@example.test": "09:01"}),
    ):
        with time_machine.travel(moment, tick=False):
            _send_step(campaign)
        assert _arrivals(sink) == expected, moment

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert set(Message.objects.filter(campaign=campaign).values_list("state", flat=True)) == {
        "sent"
    }
    page.reload()
    assert page.locator("#delivery-curve-table").count() == 0  # nothing left to plan
    screenshot(page, "local-time-2-sent")
