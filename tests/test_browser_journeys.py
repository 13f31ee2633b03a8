"""In a real browser: build an appointment-reminder journey step by step — trigger "7
days before the next appointment", send, wait 2 days, branch on a human open, follow-up
on the No path — see activation refused with the problem next to its step, fix it,
activate, and read the flow on a phone.

Screenshots: ``var/screenshots/journey-*.png``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Journey, JourneyStatus
from campaigns.tests.factories import make_sender
from campaigns.tests.journey_factories import make_template
from luxmail import roles
from luxmail.testing import screenshot, sign_in

FLOW = re.compile(r"/journeys/\d+/(#[\w-]+)?$")

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _add_step(page, kind: str, *, after: str = "", path: str = "next") -> str:
    form = page.locator(f'form.journey-add[data-add-after="{after}"][data-add-path="{path}"]')
    form.locator("select[name=kind]").select_option(kind)
    form.get_by_role("button", name="+ Add step").click()
    page.wait_for_url("**/steps/*/")
    return page.url.rstrip("/").rsplit("/", 1)[1]


def _save_step(page) -> None:
    page.click("#save-step")
    page.wait_for_url(FLOW)


def test_build_and_activate_a_journey(browser_page, make_user) -> None:
    page = browser_page
    admin = make_user(roles.ADMIN)
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    # Every page and asset loads (a missing stylesheet or script would show here).
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on("dialog", lambda dialog: dialog.accept())
    user = make_user(roles.PHI_MARKETER)
    make_template(admin, subject="Your appointment is in a week")
    make_template(admin, subject="Reminder: your appointment")
    make_sender(admin, name="Springfield Clinic")
    sign_in(page, user)

    page.get_by_role("link", name="Journeys").click()
    page.get_by_role("button", name="New journey").click()
    page.fill("#id_name", "Appointment reminder")
    page.fill("#id_description", "A week before each visit, with a follow-up.")
    page.click("button:has-text('Create journey')")
    page.get_by_text("Journey created").wait_for()
    journey = Journey.objects.get(name="Appointment reminder")

    # The trigger: 7 days before the next appointment, in the contact's time zone.
    page.click("#edit-settings")
    page.select_option("#id_trigger_kind", "date")
    page.locator("fieldset[data-when='date']").wait_for(state="visible")
    expect(page.locator("fieldset[data-when='event']")).to_be_hidden()
    page.fill("#id_offset_days", "7")
    page.select_option("#id_offset_direction", "before")
    page.select_option("#id_date_field", "next_appointment")
    page.select_option("#id_reentry_mode", "after_days")
    page.fill("#id_reentry_days", "20")
    screenshot(page, "journey-1-trigger")
    page.click("#save-settings")
    page.get_by_text("7 days before Next appointment").first.wait_for()

    # Send → wait 2 days → branch on a human open → follow-up on the No path.
    send = _add_step(page, "send")
    page.fill("#id_name", "Reminder")
    page.locator("#id_template").select_option(index=1)
    page.locator("#id_sender").select_option(label="Springfield Clinic")
    _save_step(page)
    wait = _add_step(page, "wait", after=send)
    page.fill("#id_name", "Two days")
    page.check("input[name=mode][value=duration]")
    page.fill("#id_days", "2")
    expect(page.locator("fieldset[data-when='window']")).to_be_hidden()
    _save_step(page)
    branch = _add_step(page, "branch", after=wait)
    page.fill("#id_name", "Opened?")
    page.check("input[name=mode][value=engagement]")
    expect(page.locator("#segment-builder")).to_be_hidden()
    page.select_option("#id_event", "opened")
    page.select_option("#id_step", send)
    page.fill("#id_within_days", "2")
    screenshot(page, "journey-2-branch")
    _save_step(page)
    follow_up = _add_step(page, "send", after=branch, path="no")
    page.fill("#id_name", "Follow-up")
    _save_step(page)  # no template yet

    # Activation is refused and the problem is shown at the step it concerns.
    page.click("#activate")
    page.locator(".journey-problems").wait_for()
    card = page.locator(f"#step-{follow_up}")
    assert "Choose the template this step sends." in card.inner_text()
    screenshot(page, "journey-3-problems")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.DRAFT

    card.get_by_role("button", name="Edit").click()
    page.locator("#id_template").select_option(index=2)
    page.locator("#id_sender").select_option(label="Springfield Clinic")
    _save_step(page)
    page.locator(".journey-ready").wait_for()
    page.click("#activate")
    page.get_by_text("Journey activated").wait_for()
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.ACTIVE
    assert page.locator("[data-status=active]").is_visible()
    flow = page.locator("#flow-heading + p, .journey-flow").first
    assert flow.is_visible()
    # The readable flow: reminder, wait, then the branch with its two paths.
    steps = page.locator(".journey-node").evaluate_all("nodes => nodes.map(n => n.dataset.step)")
    assert steps[:3] == [send, wait, branch] and follow_up in steps
    assert page.locator(f"#step-{branch} .path-no #step-{follow_up}").count() == 1
    assert page.locator(f"#step-{send} [data-stat=entered]").inner_text() == "0"
    screenshot(page, "journey-4-active")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the flow overflows a phone screen ({width}px)"
    screenshot(page, "journey-5-phone")
    assert problems == []
