"""axe-core on the main pages (issue #20): the dashboard, contacts, the campaign wizard,
reports (charts drawn), scheduled reports and the patient portal (link, code and
message pages) have no serious or critical WCAG 2.1 A/AA violations; the report page
is usable with the keyboard alone. The integrator reruns this after merging other pages.

axe runs in a browser context that bypasses the CSP (the vendored axe.min.js is
injected inline; the pages' own CSP rightly forbids that), signed in like a user.
Screenshots: ``var/screenshots/a11y-*.png``.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from campaigns.tests.conftest import admin, postgres, sink  # noqa: F401
from luxmail.testing import screenshot, sign_in
from portal.tests.helpers import make_patient, parse, phi_campaign, portal_link, start_and_drain
from reporting.tests.conftest import tracking_buffer  # noqa: F401 - fixture
from tests.test_browser_reports import _engagement

pytestmark = [pytest.mark.browser, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
TAGS = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']"


def violations(page: Any) -> list[str]:
    """Serious and critical axe findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate(
        f"async () => await axe.run(document, {{runOnly: {{type: 'tag', values: {TAGS}}}}})"
    )
    return [
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes'][:3]]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def audit_page(browser_page, live_server):
    context = browser_page.context.browser.new_context(
        base_url=live_server.url, bypass_csp=True, viewport={"width": 1280, "height": 900}
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def test_staff_pages_pass_axe(
    audit_page,
    make_user,
    tracking_buffer,  # noqa: F811
):
    _engagement(make_user)
    page = audit_page
    sign_in(page, make_user("Admin"))
    found: dict[str, list[str]] = {}
    for name, path, ready in (
        ("dashboard", "/", "[data-chart='chart-summary'][data-drawn='true'] .main-svg"),
        ("contacts", "/contacts/", "h1"),
        ("campaign-wizard", "/campaigns/new/", "main h1"),
        ("reports", "/reports/", "[data-chart='chart-split'][data-drawn='true'] .main-svg"),
        ("report-schedules", "/reports/schedules/", "h1"),
    ):
        page.goto(path)
        page.wait_for_selector(ready)
        screenshot(page, f"a11y-{name}")
        found[name] = violations(page)
    assert found == {name: [] for name in found}


def test_report_page_works_with_the_keyboard(audit_page, make_user, tracking_buffer):  # noqa: F811
    _engagement(make_user)
    page = audit_page
    sign_in(page, make_user("Marketer"), "/reports/")
    page.wait_for_selector("[data-chart='chart-funnel'][data-drawn='true'] .main-svg")
    # The events switch: focus the radio group and change it with the arrow keys.
    page.focus("#events-human" if page.is_checked("#events-human") else "#events-all")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"events=all"))
    # A chart's table view opens from the keyboard.
    page.focus("#table-funnel summary")
    page.keyboard.press("Enter")
    assert page.locator("#table-funnel").get_attribute("open") is not None
    assert page.locator("#table-funnel tbody tr").count() == 4


def _code(sink) -> str:  # noqa: F811
    body = parse(sink.messages[-1].data).get_body(("plain",))
    assert body is not None
    return re.findall(r"\b(\d{6})\b", body.get_content())[0]


def test_portal_pages_pass_axe(audit_page, sink, admin):  # noqa: F811
    patient = make_patient(f"a11y.{uuid.uuid4().hex[:8]}@example.test", actor=admin)
    campaign = phi_campaign([patient], actor=admin, policy="portal_only")
    start_and_drain(campaign, actor=admin)
    path = "/" + portal_link(sink.messages[0].data).split("/", 3)[3]
    page = audit_page
    found: dict[str, list[str]] = {}
    page.goto(path)
    page.get_by_role("button", name="E-mail me a code").wait_for()
    found["portal-link"] = violations(page)
    page.get_by_role("button", name="E-mail me a code").click()
    page.wait_for_url("**/verify/?sent=1")
    found["portal-code"] = violations(page)
    page.get_by_label("6-digit code").fill(_code(sink))
    page.get_by_role("button", name="Open the message").click()
    page.wait_for_url("**/read/")
    screenshot(page, "a11y-portal-read")
    found["portal-read"] = violations(page)
    assert found == {name: [] for name in found}
