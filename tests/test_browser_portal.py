"""A recipient in a real browser: notification link → e-mailed code → read → secure reply.

The campaign (PHI-bearing template, ``portal_only``) goes through the real pipeline into
an aiosmtpd relay; the link comes from the notice it received and the code from the
code e-mail. Screenshots: ``var/screenshots/portal-*.png`` (desktop and phone width).
"""

from __future__ import annotations

import uuid

import pytest

from campaigns.models import Message
from campaigns.tests.conftest import admin, postgres, sink  # noqa: F401
from luxmail import org
from luxmail.testing import screenshot
from portal.models import PortalReply
from portal.tests.helpers import (
    contains_any,
    make_patient,
    parse,
    phi_campaign,
    phi_values,
    portal_link,
    start_and_drain,
)

pytestmark = [pytest.mark.browser, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def csp_violations(browser_page):
    found: list[str] = []
    browser_page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


def _code(received) -> str:
    import re

    body = parse(received.messages[-1].data).get_body(("plain",))
    assert body is not None
    return re.findall(r"\b(\d{6})\b", body.get_content())[0]


def test_recipient_reads_and_replies_in_the_portal(
    browser_page,
    live_server,
    sink,  # noqa: F811  (the fixture imported above)
    admin,  # noqa: F811
    csp_violations,
):
    page = browser_page
    patient = make_patient(f"walk.{uuid.uuid4().hex[:8]}@example.test", actor=admin)
    campaign = phi_campaign([patient], actor=admin, policy="portal_only")
    start_and_drain(campaign, actor=admin)
    message = Message.objects.get(campaign=campaign)
    assert message.channel == "portal"
    notice = sink.messages[0].data
    phi = phi_values(patient)
    assert contains_any(notice, phi) == []
    path = "/" + portal_link(notice).split("/", 3)[3]
    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url))

    page.goto(path)
    assert org.get_settings().name in page.inner_text("header")
    page.get_by_role("button", name="E-mail me a code").wait_for()
    screenshot(page, "portal-1-link")
    page.get_by_role("button", name="E-mail me a code").click()
    page.wait_for_url("**/verify/?sent=1")
    page.get_by_text("We sent a 6-digit code").wait_for()
    screenshot(page, "portal-2-code")
    code_mail = sink.messages[-1].data
    assert contains_any(code_mail, phi) == []
    page.get_by_label("6-digit code").fill(_code(sink))
    page.get_by_role("button", name="Open the message").click()
    page.wait_for_url("**/read/")
    page.get_by_role("heading", name="Your follow-up with Dr. Octavia Marsh").wait_for()
    assert "E11.9" in page.inner_text("section.portal-body")
    assert "Available until" in page.inner_text("article")
    screenshot(page, "portal-3-read")

    page.get_by_label("Your reply").fill("Could we move the appointment to the afternoon?")
    page.get_by_role("button", name="Send reply").click()
    page.wait_for_url("**/read/?replied=1")
    page.get_by_text("Your reply was sent securely.").wait_for()
    assert "move the appointment" in page.inner_text("#reply")
    screenshot(page, "portal-4-replied")
    assert PortalReply.objects.filter(portal_message__message=message).count() == 1

    # The same page on a phone: readable, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.get_by_role("heading", name="Your follow-up with Dr. Octavia Marsh").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "portal-5-phone")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="You are signed out").wait_for()
    page.goto(path + "read/")
    page.get_by_role("button", name="E-mail me a code").wait_for()  # the session is gone

    address = sink.messages[0].rcpt_tos[0]
    for url in visited:
        assert contains_any(url, [*phi, address, address.split("@")[0]]) == [], url
    assert all(url.startswith(live_server.url) for url in visited)  # nothing from elsewhere
    assert csp_violations == []
