"""A patient in a real browser (issue 18): sign-up form with PHI and the authorization →
confirmation mail in the aiosmtpd sink → confirm (a scanner's GET confirms nothing) → a
PHI campaign reaches them and skips an unconfirmed sign-up → preferences, pause,
unsubscribe and resubscribe. The form passes axe-core (serious/critical violations fail).
Screenshots: ``var/screenshots/signup-*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client

from campaigns.models import Message
from campaigns.tests.conftest import admin, postgres, sink  # noqa: F401
from contacts import services as contact_services
from contacts.models import Consent, Contact, ContactPreference, SignupSubmission
from contacts.upsert import email_bidx
from luxmail.testing import screenshot
from portal.tests.helpers import phi_campaign, start_and_drain
from portal.tests.signup_helpers import confirm_path, make_form

pytestmark = [pytest.mark.browser, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def _axe_violations(page, url: str) -> list[str]:
    """Run axe-core on ``url`` in a context that lets the injected script run (the page's
    own CSP forbids inline scripts, as it should); serious and critical findings only."""
    context = page.context.browser.new_context(base_url=page.url.split("/f/")[0], bypass_csp=True)
    try:
        audit = context.new_page()
        audit.goto(url)
        audit.add_script_tag(path=str(AXE))
        results = audit.evaluate(
            "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        )
    finally:
        context.close()
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _mail_count(received) -> int:
    return len(received.messages)


def test_patient_signs_up_confirms_and_manages_preferences(
    browser_page,
    live_server,
    sink,  # noqa: F811
    admin,  # noqa: F811
):
    cache.clear()
    page = browser_page
    form = make_form(admin)
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )

    # The form is accessible: empty and with errors announced.
    assert _axe_violations(page, f"{live_server.url}/f/{form.slug}/") == []
    page.goto(f"/f/{form.slug}/")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_text("Please correct the").wait_for()
    assert page.get_by_label("Email address *").get_attribute("aria-invalid") == "true"
    assert _axe_violations(page, f"{live_server.url}/f/{form.slug}/") == []

    # An existing contact (no PHI consent) signs up too but never confirms.
    waiting = contact_services.contact_create(
        data={"email": "waiting@example.test", "first_name": "Wendell"}, actor=admin
    )
    contact_services.consent_grant(
        contact=waiting, purpose="marketing", source="web_form", actor=admin
    )
    Client().post(
        f"/f/{form.slug}/",
        {
            "email": "waiting@example.test",
            "first_name": "Wendell",
            "marketing": "yes",
            "phi_marketing": "yes",
            "authorization_read": "yes",
            "signature": "Wendell Pryce",
        },
    )
    assert _mail_count(sink) == 1

    # The patient fills the form with the keyboard and the labels.
    page.goto(f"/f/{form.slug}/")
    page.get_by_label("Email address *").fill("imogen.h@example.test")
    page.get_by_label("First name *").fill("Imogen")
    page.get_by_label("Last name").fill("Haverford")
    page.get_by_label("Date of birth").fill("1970-02-03")
    page.get_by_label("Conditions (ICD-10)").fill("E11.9")
    page.get_by_label("Primary provider").fill("Dr. Octavia Marsh")
    page.get_by_label("Next appointment").fill("2031-03-14")
    page.get_by_label(form.lists.first().name).check()
    page.get_by_label("Send me news").check()
    page.get_by_label("I authorize the use of my health information").check()
    page.get_by_label("I have read this authorization and I sign it.").check()
    page.get_by_label("Signature: type your full name").fill("Imogen Haverford")
    screenshot(page, "signup-1-form")
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Sign up").press("Enter")
    page.get_by_role("heading", name="Check your inbox").wait_for()
    screenshot(page, "signup-2-thanks")
    assert not Contact.objects.filter(email_bidx=email_bidx("imogen.h@example.test")).exists()

    assert _mail_count(sink) == 2
    mail = sink.messages[-1]
    assert mail.rcpt_tos == ["imogen.h@example.test"]
    assert b"E11.9" not in mail.data and b"Haverford" not in mail.data  # no PHI in the mail
    path = confirm_path(mail.data)

    # A link scanner's GET confirms nothing.
    scanner = Client().get(path, HTTP_USER_AGENT="SafeLinks/1.0")
    assert scanner.status_code == 200
    assert not Contact.objects.filter(email_bidx=email_bidx("imogen.h@example.test")).exists()

    page.goto(path)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Thank you, you are signed up").wait_for()
    screenshot(page, "signup-3-confirmed")
    patient = Contact.objects.get(email_bidx=email_bidx("imogen.h@example.test"))
    assert set(Consent.objects.filter(contact=patient).values_list("purpose", flat=True)) == {
        "marketing",
        "phi_marketing",
    }
    assert SignupSubmission.objects.filter(contact=None, status="pending").count() == 1

    # A PHI campaign reaches the confirmed patient and skips the unconfirmed one.
    campaign = phi_campaign([patient, waiting], actor=admin)
    before = _mail_count(sink)
    start_and_drain(campaign, actor=admin)
    sent = Message.objects.filter(campaign=campaign, state="sent")
    assert list(sent.values_list("contact_id", flat=True)) == [patient.pk]
    assert [m.rcpt_tos for m in sink.messages[before:]] == [["imogen.h@example.test"]]

    # Preferences: frequency and channel, then a pause.
    page.get_by_role("link", name="Manage your email preferences").click()
    page.get_by_role("heading", name="Email preferences").wait_for()
    page.get_by_label("Monthly digest only").check()
    page.get_by_label("Secure portal").check()
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Your preferences are saved").wait_for()
    pref = ContactPreference.objects.get(contact=patient)
    assert (pref.frequency, pref.channel) == ("monthly", "portal")
    page.get_by_role("button", name="Pause for 30 days").click()
    page.get_by_text("Paused until").wait_for()
    pref.refresh_from_db()
    assert pref.paused_until is not None
    screenshot(page, "signup-4-preferences")

    # Unsubscribe from everything, then come back with a confirmed resubscribe.
    page.get_by_role("link", name="Unsubscribe from everything").click()
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    patient.refresh_from_db()
    assert patient.status == "unsubscribed"
    page.go_back()
    page.go_back()
    page.reload()
    page.get_by_role("button", name="Resubscribe").click()
    page.get_by_text("confirm it to receive our emails again").wait_for()
    patient.refresh_from_db()
    assert patient.status == "unsubscribed"  # nothing changes before the confirmation
    page.goto(confirm_path(sink.messages[-1].data))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("You will receive our emails again.").wait_for()
    patient.refresh_from_db()
    assert patient.status == "active"
    kinds = set(patient.consent_ledger.values_list("kind", flat=True))
    assert {"grant", "confirmation", "preferences", "unsubscribe", "resubscribe"} <= kinds
    assert csp_errors == []
