"""A/B test in a real browser (issue #19 item 5): a marketer configures two subject
variants on the A/B page and starts the test (the variants really go to the relay);
a link scanner clicks every message of A and two people click B; after the wait the
winner is decided on human clicks, goes to the rest, and the campaign's report shows
the variants side by side with the p-value.

Screenshots: ``var/screenshots/abtest-*.png``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import ABTest, ABTestState, Campaign, Message
from campaigns.tests.conftest import sink  # noqa: F401 - the real aiosmtpd relay
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import roles
from luxmail.testing import screenshot, sign_in
from reporting import abtests, buffer
from reporting.tests.conftest import tracking_buffer  # noqa: F401 - a clean tracking buffer
from reporting.tests.helpers import BROWSER, built_html, drain

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _click(message_id: int, campaign_id: int, when: dt.datetime, ip: str) -> None:
    buffer.append(
        {"k": "c", "m": message_id, "c": campaign_id, "t": when.timestamp(), "ip": ip}
        | {"ua": BROWSER, "l": 1}
    )


def test_configure_an_ab_test_and_see_the_variants_side_by_side(
    browser_page,
    live_server,
    make_user,
    sink,  # noqa: F811
    tracking_buffer,  # noqa: F811
) -> None:
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    marketer = make_user(roles.ADMIN)
    ids = make_contacts(12, prefix="abui")
    campaign: Campaign = make_campaign(contact_ids=ids, actor=marketer, subject="Flu season")

    sign_in(page, marketer, f"/campaigns/{campaign.pk}/")
    page.click("text=Set up an A/B test")
    page.fill("#id_test_percent", "50")
    page.select_option("#id_metric", "click_rate")
    page.fill("#id_wait_hours", "1")
    page.fill("#id_min_sample", "2")
    page.fill("#id_subject_A", "Flu shots are here")
    page.fill("#id_subject_B", "Book your flu shot today")
    page.click("button:has-text('Save the A/B test')")
    page.get_by_text("A/B test saved").wait_for()
    page.click("#abtest-start")
    page.get_by_text("Test started: 6 recipients").wait_for()
    assert page.get_attribute("#abtest-state", "data-state") == ABTestState.TESTING
    screenshot(page, "abtest-1-started")

    test = ABTest.objects.get(campaign=campaign)
    a, b = list(test.variants.order_by("label"))
    assert sorted(len(m.rcpt_tos) for m in sink.messages) == [1] * 6  # sent through the relay
    sent = timezone.now() - dt.timedelta(hours=2)
    a_ids = list(Message.objects.filter(campaign_id=a.campaign_id).values_list("id", flat=True))
    b_ids = list(Message.objects.filter(campaign_id=b.campaign_id).values_list("id", flat=True))
    Message.objects.filter(id__in=a_ids + b_ids).update(sending_at=sent, finished_at=sent)
    built_html(Campaign.objects.get(pk=a.campaign_id), a_ids[0])
    built_html(Campaign.objects.get(pk=b.campaign_id), b_ids[0])
    for message_id in a_ids:  # a link scanner, seconds after delivery
        _click(message_id, a.campaign_id, sent + dt.timedelta(seconds=2), "198.51.100.7")
    _click(b_ids[0], b.campaign_id, sent + dt.timedelta(minutes=20), "198.51.100.8")
    _click(b_ids[1], b.campaign_id, sent + dt.timedelta(minutes=40), "198.51.100.9")
    drain()
    ABTest.objects.filter(pk=test.pk).update(decide_after=timezone.now() - dt.timedelta(minutes=1))
    assert abtests.abtests_decide_due() == 1  # what beat's reporting.decide_ab_tests runs

    page.reload()
    assert page.get_attribute("#abtest-state", "data-state") == ABTestState.WINNER_SENT
    page.click("#abtest-results-link")
    table = page.locator("#abtest-table")
    table.wait_for()
    assert "winner" in table.locator("th[data-variant=B]").inner_text()
    assert "Book your flu shot today" in table.inner_text()
    assert "p = " in page.inner_text("#abtest-significance")
    screenshot(page, "abtest-2-side-by-side")
    assert len(sink.messages) == 12  # the winner went to the other six
