"""Settings → Webhooks in a real browser, at desktop and phone width.

Screenshots: ``var/screenshots/webhooks-*.png``.
"""

from __future__ import annotations

import pytest

from luxmail.testing import screenshot, sign_in
from reporting.models import WebhookEndpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_adds_a_webhook_sends_a_test_event_and_disables_it(
    browser_page, make_user, recording_server
):
    page = browser_page
    csp_errors = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, make_user("Admin"))

    page.goto("/settings/")
    page.click("text=Webhooks")
    page.wait_for_url("**/reports/webhooks/")
    page.fill("#id_name", "Epic integration")
    page.fill("#id_url", recording_server.url + "/luxmail")
    page.check("input[name=event_types][value=opened]")
    page.check("input[name=event_types][value=clicked]")
    page.click("form:has(#id_url) button[type=submit]")
    secret = page.locator("#issued-secret code").inner_text()
    assert secret.startswith("whsec_")
    screenshot(page, "webhooks-01-created")

    page.click("#issued-secret a")
    page.click("text=Send test event")
    page.wait_for_selector("text=Test event delivered (HTTP 200)")
    assert len(recording_server.requests) == 1
    screenshot(page, "webhooks-02-test-delivered")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    screenshot(page, "webhooks-03-phone")
    # The log and the buttons stay usable at phone width (no horizontal page scroll).
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1

    page.click("button:has-text('Disable')")
    page.wait_for_selector("text=no new events are queued for it")
    assert WebhookEndpoint.objects.get().active is False
    assert csp_errors == []
