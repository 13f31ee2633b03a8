"""Staff management and break-glass in a real browser (issue 17 §6).

* Invitation: an Admin invites by e-mail; the invitee opens the link from the mail,
  chooses a username and password, signs in, enrols an authenticator app through the
  ordinary enrolment flow and lands on the dashboard.
* Break-glass: a Marketer asks for PHI access with a justification; the Admins get a
  mail and an in-app notice at once; the Marketer's PHI view is flagged in the audit
  view; the access ends when the window runs out.

Screenshots: ``var/screenshots/staff-*.png``.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from campaigns.tests.factories import make_contacts
from contacts.models import Contact
from luxmail import breakglass, roles
from luxmail.models import AuditEvent, BreakGlassGrant, User
from luxmail.testing import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WHY = "Recall of a batch: on-call nurse must reach affected patients tonight"


def test_admin_invites_and_the_invitee_joins_with_mfa(browser_page, make_user, live_server):
    page = browser_page
    admin = make_user(roles.ADMIN)
    sign_in(page, admin, "/staff/")
    page.fill("#id_email", "new.nurse@staff.example")
    page.check("input[name=roles][value='Marketer']")
    screenshot(page, "staff-01-invite")
    page.click("#invite-form button[type=submit]")
    page.wait_for_selector("#invitations td:text('new.nurse@staff.example')")
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+(/staff/invitation/\S+/)", mail.outbox[0].body).group(1)

    # The invitee, in a browser of their own.
    invitee = page.context.browser.new_context(base_url=live_server.url).new_page()
    invitee.goto(link)
    assert "Marketer" in invitee.locator("main").inner_text()
    invitee.fill("#id_username", "nnurse")
    invitee.fill("#id_password1", "an uncommon night-shift passphrase")
    invitee.fill("#id_password2", "an uncommon night-shift passphrase")
    screenshot(invitee, "staff-02-accept")
    invitee.click("#accept-form button[type=submit]")
    invitee.wait_for_url("**/accounts/login/**")
    invitee.fill("#id_username", "nnurse")
    invitee.fill("#id_password", "an uncommon night-shift passphrase")
    invitee.click("form:has(#id_password) button[type=submit]")
    invitee.wait_for_url("**/accounts/mfa/enrol/**")
    secret = invitee.locator("#totp-secret").inner_text().replace(" ", "")
    invitee.fill("#id_token", pyotp.TOTP(secret).now())
    invitee.click("form:has(#id_token) button[type=submit]")
    invitee.wait_for_selector("#backup-codes")
    invitee.click("#continue")
    invitee.wait_for_url(f"{live_server.url}/")
    assert invitee.locator("h1").inner_text() == "Dashboard"
    screenshot(invitee, "staff-03-invitee-dashboard")

    user = User.objects.get(username="nnurse")
    assert roles.role_names(user) == ["Marketer"]
    actions = set(AuditEvent.objects.filter(actor_id=user.pk).values_list("action", flat=True))
    assert {"staff.invite_accept", "auth.login", "mfa.enrol"} <= actions
    # The link worked once.
    invitee.goto(link)
    assert "not valid" in invitee.locator("#invitation-error").inner_text()
    invitee.context.close()


def test_break_glass_request_notice_flagged_access_and_expiry(
    browser_page, make_user, live_server, settings
):
    # The window is moved past its end below; keep the session alive across that jump.
    settings.SESSION_COOKIE_AGE = 4 * 3600
    page = browser_page
    admin = make_user(roles.ADMIN)
    marketer = make_user(roles.MARKETER)
    contact = Contact.objects.get(pk=make_contacts(1)[0])

    sign_in(page, marketer, "/staff/break-glass/request/")
    page.fill("#id_justification", WHY)
    page.select_option("#id_minutes", "30")
    screenshot(page, "staff-04-break-glass-request")
    page.click("#break-glass-form button[type=submit]")
    page.wait_for_selector("#break-glass-open")
    grant = BreakGlassGrant.objects.get(user=marketer)
    # Admins are told at once: a mail now, the notice on their next page.
    assert [m.to for m in mail.outbox] == [[admin.email]]

    page.goto(f"/contacts/{contact.uuid}/")
    page.click("#show-phi")
    page.wait_for_selector("#phi-panel")
    flagged = AuditEvent.objects.filter(actor_id=marketer.pk, phi=True)
    assert flagged.exists()
    assert all(e.details.get("break_glass") == grant.pk for e in flagged)

    reviewer = page.context.browser.new_context(base_url=live_server.url).new_page()
    sign_in(reviewer, admin, "/")
    assert "1 break-glass PHI access" in reviewer.locator("#break-glass-notice").inner_text()
    reviewer.click("#break-glass-notice a")
    reviewer.wait_for_selector(f"#open-grants td:text('{marketer.username}')")
    screenshot(reviewer, "staff-05-break-glass-review")
    reviewer.goto("/audit/?phi_only=on")
    assert f"break glass: {grant.pk}" in reviewer.locator("main table").last.inner_text()
    screenshot(reviewer, "staff-06-audit-flagged")
    # The compliance dashboard lists the open grant and links to where it is reviewed.
    reviewer.click("nav >> text=Compliance")
    row = reviewer.locator(f"#compliance-break_glass tr:has-text('#{grant.pk}')")
    assert row.locator("a").get_attribute("href") == "/staff/break-glass/"
    screenshot(reviewer, "staff-06b-compliance")

    with time_machine.travel(timezone.now() + timedelta(minutes=31), tick=True):
        page.goto(f"/contacts/{contact.uuid}/")
        assert page.locator("#break-glass-open").count() == 0
        assert page.locator("#show-phi").count() == 0
        screenshot(page, "staff-07-after-expiry")
        assert breakglass.break_glass_expire() == 1
    assert AuditEvent.objects.filter(action="breakglass.expire").count() == 1
    reviewer.context.close()
