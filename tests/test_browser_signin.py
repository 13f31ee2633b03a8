"""Sign-in in a real browser: password → TOTP enrolment → backup codes → dashboard, and
passkeys through Chromium's virtual WebAuthn authenticator (DevTools protocol).

Screenshots of every step go to ``var/screenshots/signin-*.png`` and ``passkey-*.png``.
"""

import base64
from datetime import timedelta

import pyotp
import pytest
import time_machine
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from luxmail import org
from luxmail.models import AuditEvent
from luxmail.testing import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def csp_violations(browser_page):
    """Console errors about the Content-Security-Policy (there must be none)."""
    found = []
    browser_page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


def sign_in_with_password(page, user):
    page.goto("/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("#id_username", user.username)
    page.fill("#id_password", user.test_password)
    page.click("form:has(#id_password) button[type=submit]")


def submit_code(page, code):
    page.fill("#id_token", code)
    page.click("form:has(#id_token) button[type=submit]")


def totp_now(user):
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return pyotp.TOTP(base64.b32encode(device.bin_key).decode()).now()


def test_new_user_signs_in_enrols_totp_and_lands_on_the_dashboard(
    browser_page, make_user, live_server, csp_violations
):
    page = browser_page
    user = make_user("Marketer", totp=False)

    page.goto("/")
    page.wait_for_url("**/accounts/login/**")
    assert page.locator("h1").inner_text() == "Sign in to LuxMail"
    screenshot(page, "signin-01-login")
    page.fill("#id_username", user.username)
    page.fill("#id_password", user.test_password)
    page.click("form:has(#id_password) button[type=submit]")

    # No device yet: straight to enrolment, QR code as inline SVG plus the typed key.
    page.wait_for_url("**/accounts/mfa/enrol/**")
    assert page.locator("figure.qr svg").count() == 1
    screenshot(page, "signin-02-enrol-totp")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    submit_code(page, pyotp.TOTP(secret).now())

    page.wait_for_selector("#backup-codes")
    codes = page.locator("#backup-codes code").all_inner_texts()
    assert len(codes) == 10 and all(len(c) == 8 and c.isdigit() for c in codes)
    screenshot(page, "signin-03-backup-codes")
    page.click("#continue")

    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("nav[aria-label=Main]").is_visible()
    screenshot(page, "signin-04-dashboard")

    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
    actions = set(AuditEvent.objects.filter(actor_id=user.pk).values_list("action", flat=True))
    assert {"auth.login", "mfa.enrol", "mfa.backup_codes"} <= actions
    assert csp_violations == []


def test_phone_width_sign_in_and_wrong_code_message(browser_page, make_user, csp_violations):
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    user = make_user("Viewer")
    sign_in_with_password(page, user)
    page.wait_for_url("**/accounts/mfa/**")
    submit_code(page, "000000")
    error = page.locator("#id_token_error")
    assert "not valid" in error.inner_text()
    screenshot(page, "signin-05-wrong-code-phone")
    # Nothing overflows sideways at phone width.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # django-otp pauses the device for a second after a miss; move the clock instead
    # of sleeping (the live server runs in this process, so it moves too).
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=True):
        submit_code(page, totp_now(user))
        page.wait_for_selector("h1:text('Dashboard')")
    screenshot(page, "signin-06-dashboard-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert csp_violations == []


# --- passkeys with Chromium's virtual authenticator -----------------------------------


@pytest.fixture
def passkey_settings(settings, live_server):
    # The relying party is the live server's host; its origin includes the port.
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url.replace("127.0.0.1", "localhost")]
    return settings


@pytest.fixture
def virtual_authenticator(browser_page, passkey_settings, live_server):
    assert live_server.url.startswith("http://localhost:"), live_server.url
    cdp = browser_page.context.new_cdp_session(browser_page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    created = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, created["authenticatorId"]


def test_register_a_passkey_and_sign_in_with_it(
    browser_page, make_user, live_server, virtual_authenticator, csp_violations
):
    page = browser_page
    cdp, authenticator_id = virtual_authenticator
    user = make_user("Marketer")

    sign_in_with_password(page, user)
    page.wait_for_url("**/accounts/mfa/**")
    submit_code(page, totp_now(user))
    page.wait_for_selector("h1:text('Dashboard')")

    page.goto("/accounts/security/")
    page.click("#passkey-register-button")
    # static/js/passkeys.js reloads the page once the passkey is saved.
    page.wait_for_selector("tr[data-factor=passkey]")
    screenshot(page, "passkey-01-registered")
    assert WebAuthnCredential.objects.filter(user=user, confirmed=True).count() == 1
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    assert len(stored["credentials"]) == 1

    # A new session: password, then the passkey instead of a code.
    page.context.clear_cookies()
    sign_in_with_password(page, user)
    page.wait_for_url("**/accounts/mfa/**")
    page.wait_for_selector("#passkey-verification-button")
    screenshot(page, "passkey-02-verify")
    page.click("#passkey-verification-button")
    page.wait_for_selector("h1:text('Dashboard')")
    screenshot(page, "passkey-03-dashboard")

    verified = AuditEvent.objects.filter(actor_id=user.pk, action="auth.mfa_verified")
    assert list(verified.order_by("id").values_list("details__factor", flat=True)) == [
        "totp",
        "passkey",
    ]
    assert AuditEvent.objects.filter(
        actor_id=user.pk, action="mfa.enrol", details__factor="passkey"
    ).exists()
    assert WebAuthnCredential.objects.get(user=user).last_used_at is not None
    assert csp_violations == []


def test_admin_is_made_to_register_a_passkey_when_the_org_requires_it(
    browser_page, make_user, live_server, virtual_authenticator, csp_violations
):
    page = browser_page
    admin = make_user("Admin")
    org.org_settings_update(actor=None, require_passkey_for_admins=True)

    sign_in_with_password(page, admin)
    page.wait_for_url("**/accounts/mfa/**")
    submit_code(page, totp_now(admin))
    page.wait_for_url("**/accounts/mfa/passkey/**")
    assert "requires Admins" in page.locator("article").inner_text()
    screenshot(page, "passkey-04-required-for-admins")
    # Every other page sends the Admin back here.
    page.goto("/settings/")
    page.wait_for_url("**/accounts/mfa/passkey/**")

    page.click("#passkey-register-button")
    # Registered: on to the page the Admin asked for.
    page.wait_for_url("**/settings/")
    page.wait_for_selector("h1:text('Organization settings')")
    screenshot(page, "passkey-05-admin-settings")
    assert WebAuthnCredential.objects.filter(user=admin).count() == 1
    assert csp_violations == []
