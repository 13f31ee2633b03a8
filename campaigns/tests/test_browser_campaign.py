"""In a real browser: compose a template (live preview), build a campaign for a segment,
send it, and watch the campaign page reach "Sent" while a real Celery worker delivers
into an aiosmtpd sink.

Screenshots: ``var/screenshots/campaign-*.png``.
"""

from __future__ import annotations

import re

import pytest

from campaigns.models import Campaign, CampaignStatus
from campaigns.tests.factories import make_contacts, make_sender
from campaigns.tests.test_worker import kill, start_worker
from contacts import services as contact_services
from luxmail import roles
from luxmail.testing import screenshot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery,
    pytest.mark.redis,
    pytest.mark.smtp,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_compose_build_send_and_watch(
    postgres, browser_page, sink, broker, make_user, admin, tmp_path
) -> None:
    page = browser_page
    user = make_user(roles.MARKETER)
    make_contacts(120, domain="patients.test")
    make_contacts(30, prefix="other", domain="elsewhere.test")
    segment = contact_services.segment_create(
        name="Patients domain",
        rules={"field": "email_domain", "op": "eq", "value": "patients.test"},
        actor=admin,
    )
    sender = make_sender(admin, name="Clinic news")
    worker = start_worker(sink.port, tmp_path, "browser")
    try:
        sign_in(page, user)

        # 1. Compose a template; the preview frame follows the typing.
        page.goto("/campaigns/templates/new/")
        page.fill("#id_name", "Autumn letter")
        page.fill("#id_subject", "{{ contact.first_name }}, our autumn hours")
        page.fill(
            "#id_html",
            "<style>h1 { color: #1b4d7a; }</style><h1>Hello {{ contact.first_name }}</h1>"
            '<p>New evening hours. <a href="https://clinic.example/hours">See them</a></p>',
        )
        frame = page.frame_locator("#preview-frame")
        frame.locator("h1").filter(has_text="Hello Pat").wait_for()
        page.wait_for_load_state("networkidle")  # let the debounced refresh settle
        frame.locator("h1").filter(has_text="Hello Pat").wait_for()
        screenshot(page, "campaign-1-template")
        page.click("button:has-text('Save template')")
        page.get_by_text("Template saved").wait_for()

        # 2. Build the campaign for the segment; the recipient count follows the choice.
        page.goto("/campaigns/new/")
        page.fill("#id_name", "Autumn hours")
        page.get_by_label("Patients domain").first.check()
        page.locator("#audience-count strong").filter(has_text="120").wait_for()
        # Typed as code, without the locked footer: the list says so.
        page.select_option("#id_template", label="Autumn letter (no footer — transactional only)")
        page.select_option("#id_sender", label=str(sender))
        screenshot(page, "campaign-2-wizard")
        page.click("button:has-text('Save and review')")
        page.wait_for_url(re.compile(r".*/campaigns/\d+/review/$"))
        screenshot(page, "campaign-3-review")
        # The code-typed template lacks the organization footer marketing needs: the
        # pre-send check fails it, and its fix link adds the footer in one click.
        page.locator('[data-item="locked_footer"][data-verdict="fail"]').wait_for()
        page.click("#presend-items a:has-text('Add the organization footer')")
        page.click("#add-footer-form button:has-text('Add the organization footer')")
        page.wait_for_url(re.compile(r".*/campaigns/\d+/review/$"))
        page.locator('[data-item="locked_footer"][data-verdict="pass"]').wait_for()

        # 3. Send, and watch the page reach "Sent" through the HTMX progress polling.
        page.on("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Send or schedule')")
        page.wait_for_url(re.compile(r".*/campaigns/\d+/$"))
        page.locator('[data-status="sent"]').wait_for(timeout=120_000)
        assert page.locator('[data-count="sent"]').inner_text() == "120"
        assert page.locator("button:has-text('Pause')").count() == 0
        screenshot(page, "campaign-4-sent")
    finally:
        kill(worker)
    campaign = Campaign.objects.get(name="Autumn hours")
    assert campaign.status == CampaignStatus.SENT
    assert campaign.segments.get() == segment
    received = sink.recipients()
    assert len(received) == 120 == len(set(received))
    assert all(address.endswith("@patients.test") for address in received)
