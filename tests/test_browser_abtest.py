"""A/B test in a real browser (issue #19 item 5): a marketer configures two subject
variants on the A/B page and starts the test (the variants really go to the relay);
a link scanner clicks every message of A and two people click B; after the wait the
winner is decided on human clicks, goes to the rest, and the campaign's report shows
the variants side by side with the p-value.

Screenshots: ``var/screenshots/abtest-*.png``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from campaigns.models import ABTest, ABTestState, Campaign
from campaigns.tests.conftest import sink  # noqa: F401 - the real aiosmtpd relay
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import roles
from luxmail.testing import screenshot, sign_in
from reporting import abtests
from reporting.models import Event
from reporting.tests.conftest import tracking_buffer  # noqa: F401 - a clean tracking buffer
from reporting.tests.helpers import BROWSER, drain, hit, path_of, tracking_urls

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# A security gateway following every link of a mail on delivery (Microsoft Defender's
# URL detonation announces itself like this) and two people in their mail apps.
SCANNER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Microsoft-URLAnalyzer/1.0"
)
HUMAN_IPS = ("203.0.113.20", "203.0.113.41")


def _delivered(data: bytes) -> tuple[str, list[str]]:
    """Subject and tracked links of a mail as the relay received it."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    html = next(
        str(part.get_content()) for part in parsed.walk() if part.get_content_type() == "text/html"
    )
    return str(parsed["Subject"]), tracking_urls(html)[0]


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
    a = test.variants.get(label="A")
    assert sorted(len(m.rcpt_tos) for m in sink.messages) == [1] * 6  # sent through the relay
    by_subject: dict[str, list[str]] = {}
    for received in sink.messages:  # the clicks come from the mails as they were delivered
        subject, links = _delivered(received.data)
        by_subject.setdefault(subject, []).extend(links)
    assert sorted(len(v) for v in by_subject.values()) == [3, 3]
    client = Client()
    for url in by_subject["Flu shots are here"]:  # a gateway sweeps A on delivery
        assert hit(client, path_of(url), agent=SCANNER, ip="40.92.12.34").status_code == 302
    # Twenty minutes on, two people open the mail of B in their mail apps and click.
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=20), tick=True):
        for url, ip in zip(by_subject["Book your flu shot today"][:2], HUMAN_IPS, strict=False):
            assert hit(client, path_of(url), agent=BROWSER, ip=ip).status_code == 302
    drain()
    variant_a = Campaign.objects.get(pk=a.campaign_id)
    assert Event.objects.filter(message__campaign=variant_a, kind="click").count() == 3
    assert abtests.abtests_decide_due() == 0  # the wait (1 hour) is not over
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1, minutes=5), tick=True):
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
    rest = [_delivered(received.data)[0] for received in sink.messages[6:]]
    assert rest == ["Book your flu shot today"] * 6
    test_recipients = {r for m in sink.messages[:6] for r in m.rcpt_tos}
    assert test_recipients.isdisjoint(r for m in sink.messages[6:] for r in m.rcpt_tos)
