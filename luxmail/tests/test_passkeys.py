"""Passkeys (django-otp-webauthn) as a second factor, and "require passkey for Admins".

The WebAuthn responses come from a software authenticator with real P-256 keys, so the
library's and py_webauthn's verification runs unmodified.
"""

import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.models import WebAuthnCredential

from luxmail import org
from luxmail.models import AuditEvent
from luxmail.testing import verify_session
from luxmail.tests.softauthn import SoftAuthenticator

REG_BEGIN = "otp_webauthn:credential-registration-begin"
REG_COMPLETE = "otp_webauthn:credential-registration-complete"
AUTH_BEGIN = "otp_webauthn:credential-authentication-begin"
AUTH_COMPLETE = "otp_webauthn:credential-authentication-complete"


@pytest.fixture
def authenticator(settings):
    return SoftAuthenticator(
        rp_id=settings.OTP_WEBAUTHN_RP_ID, origin=settings.OTP_WEBAUTHN_ALLOWED_ORIGINS[0]
    )


def register(client, authenticator):
    begin = client.post(reverse(REG_BEGIN))
    if begin.status_code != 200:
        return begin
    return client.post(
        reverse(REG_COMPLETE),
        data=json.dumps(authenticator.create(begin.json())),
        content_type="application/json",
    )


def passkey_verify(client, authenticator, *, tamper=False, next_url=""):
    begin = client.post(reverse(AUTH_BEGIN))
    if begin.status_code != 200:
        return begin
    url = reverse(AUTH_COMPLETE) + (f"?next={next_url}" if next_url else "")
    return client.post(
        url,
        data=json.dumps(authenticator.get(begin.json(), tamper=tamper)),
        content_type="application/json",
    )


def password_login(client, user):
    response = client.post(
        reverse("accounts:login"), {"username": user.username, "password": user.test_password}
    )
    assert response.status_code == 302, response.content[:500]
    return response


def with_passkey(make_user, authenticator, role="Admin", **kwargs):
    """A user with TOTP and a passkey registered through the real endpoints."""
    user = make_user(role, **kwargs)
    client = Client()
    verify_session(client, user)
    assert register(client, authenticator).status_code == 200
    return user


def session_device(client):
    return client.session.get(DEVICE_ID_SESSION_KEY, "")


def require_passkeys_for_admins(on=True):
    org.org_settings_update(actor=None, require_passkey_for_admins=on)


# --- registration ------------------------------------------------------------------


@pytest.mark.django_db
def test_registering_a_passkey_needs_a_verified_session(client, make_user, authenticator):
    user = make_user("Marketer")
    password_login(client, user)
    response = register(client, authenticator)
    assert response.status_code == 403
    assert "authenticator app" in response.json()["detail"]
    # A brand-new user without any factor cannot skip the authenticator app either.
    newcomer = make_user("Marketer", totp=False)
    other = Client()
    password_login(other, newcomer)
    assert register(other, authenticator).status_code == 403
    assert not WebAuthnCredential.objects.exists()


@pytest.mark.django_db
def test_anonymous_cannot_use_passkeys(client):
    # Passkeys are a second factor only: no passwordless sign-in.
    assert client.post(reverse(AUTH_BEGIN)).status_code == 403
    assert client.post(reverse(REG_BEGIN)).status_code == 403


@pytest.mark.django_db
def test_passkey_registration_from_a_verified_session_is_audited(staff_client, authenticator):
    client = staff_client("Marketer")
    response = register(client, authenticator)
    assert response.status_code == 200
    credential = WebAuthnCredential.objects.get(user=client.user)
    assert credential.name.startswith("Passkey 1 (")
    event = AuditEvent.objects.get(action="mfa.enrol")
    assert event.actor_id == client.user.pk
    assert event.details == {"factor": "passkey", "credential": credential.pk}
    page = client.get(reverse("accounts:security")).content.decode()
    assert 'data-factor="passkey"' in page
    assert credential.name in page


# --- verification ------------------------------------------------------------------


@pytest.mark.django_db
def test_passkey_verifies_the_session_and_is_audited(client, make_user, authenticator):
    user = with_passkey(make_user, authenticator, "Marketer")
    password_login(client, user)
    assert client.get(reverse("dashboard")).status_code == 302
    page = client.get(reverse("accounts:mfa_verify")).content.decode()
    assert 'id="passkey-verification-placeholder"' in page
    assert 'id="passkey-verification-available-template"' in page

    response = passkey_verify(client, authenticator, next_url="/audit/")
    assert response.status_code == 200, response.content
    assert response.json()["redirect_url"] == "/audit/"
    assert session_device(client).startswith("django_otp_webauthn.webauthncredential/")
    assert client.get(reverse("dashboard")).status_code == 200
    event = AuditEvent.objects.filter(action="auth.mfa_verified").latest("id")
    assert event.actor_id == user.pk and event.details == {"factor": "passkey"}
    assert WebAuthnCredential.objects.get(user=user).last_used_at is not None


@pytest.mark.django_db
def test_another_users_passkey_is_refused(client, make_user, authenticator):
    owner = with_passkey(make_user, authenticator, "Marketer")
    other = make_user("Marketer")
    password_login(client, other)
    response = passkey_verify(client, authenticator)
    assert response.status_code in (403, 404)
    assert client.get(reverse("dashboard")).status_code == 302
    assert owner.pk != other.pk


@pytest.mark.django_db
def test_failed_passkey_assertions_lock_the_account(client, make_user, authenticator, settings):
    user = with_passkey(make_user, authenticator, "Marketer")
    password_login(client, user)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert passkey_verify(client, authenticator, tamper=True).status_code == 422
    response = passkey_verify(client, authenticator, tamper=True)
    assert response.status_code == 403
    assert "temporarily locked" in response.json()["detail"]
    # The session ended, and the right passkey or a fresh password login gets nowhere.
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("accounts:login"))
    fresh = Client()
    locked = fresh.post(
        reverse("accounts:login"), {"username": user.username, "password": user.test_password}
    )
    assert locked.status_code == 403
    assert "temporarily locked" in locked.content.decode()
    assert (
        AuditEvent.objects.filter(action="auth.login_failed", details__stage="passkey").count()
        == settings.AXES_FAILURE_LIMIT
    )
    assert AuditEvent.objects.filter(action="auth.lockout").exists()


# --- removal -----------------------------------------------------------------------


@pytest.mark.django_db
def test_passkey_removal_is_audited_and_the_last_factor_is_kept(staff_client, authenticator):
    client = staff_client("Marketer")
    assert register(client, authenticator).status_code == 200
    credential = WebAuthnCredential.objects.get(user=client.user)
    response = client.post(
        reverse("accounts:device_remove"), {"device": credential.persistent_id}, follow=True
    )
    assert "Factor removed." in response.content.decode()
    assert not WebAuthnCredential.objects.exists()
    event = AuditEvent.objects.get(action="mfa.remove")
    assert event.details == {"factor": "passkey"}
    # The authenticator app is now the only factor: it cannot go.
    totp = client.user.totpdevice_set.get()
    response = client.post(
        reverse("accounts:device_remove"), {"device": totp.persistent_id}, follow=True
    )
    assert "before removing your last one" in response.content.decode()
    assert client.user.totpdevice_set.exists()


@pytest.mark.django_db
def test_factors_of_other_users_cannot_be_removed(staff_client, make_user):
    client = staff_client("Marketer")
    victim = make_user("Marketer")
    device = victim.totpdevice_set.get()
    response = client.post(
        reverse("accounts:device_remove"), {"device": device.persistent_id}, follow=True
    )
    assert "no longer exists" in response.content.decode()
    assert victim.totpdevice_set.exists()


# --- require passkey for Admins ----------------------------------------------------


@pytest.mark.django_db
def test_admin_with_a_passkey_must_use_it(client, make_user, authenticator):
    import base64

    import pyotp

    admin = with_passkey(make_user, authenticator, "Admin")
    require_passkeys_for_admins()
    password_login(client, admin)
    page = client.get(reverse("accounts:mfa_verify")).content.decode()
    assert 'name="token"' not in page  # no code field offered
    device = admin.totpdevice_set.get()
    code = pyotp.TOTP(base64.b32encode(device.bin_key).decode()).now()
    response = client.post(reverse("accounts:mfa_verify"), {"token": code})
    assert response.status_code == 200
    assert "requires Admins to sign in with a passkey" in response.content.decode()
    assert client.get(reverse("dashboard")).status_code == 302
    # A refused policy is not a guessed code: nothing counts towards the lockout.
    assert not AuditEvent.objects.filter(action="auth.login_failed").exists()
    assert passkey_verify(client, authenticator).status_code == 200
    assert client.get(reverse("dashboard")).status_code == 200


@pytest.mark.django_db
def test_admin_without_a_passkey_must_register_one_after_totp(client, make_user, authenticator):
    import base64

    import pyotp

    admin = make_user("Admin")
    require_passkeys_for_admins()
    password_login(client, admin)
    device = admin.totpdevice_set.get()
    code = pyotp.TOTP(base64.b32encode(device.bin_key).decode()).now()
    response = client.post(
        reverse("accounts:mfa_verify"), {"token": code, "next": reverse("audit")}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:passkey_enrol"))
    # Nothing else works until a passkey is registered: pages, admin, session API.
    for path in (reverse("dashboard"), reverse("settings"), "/admin/"):
        blocked = client.get(path)
        assert blocked.status_code == 302, path
        assert blocked["Location"].startswith(reverse("accounts:passkey_enrol")), path
    assert client.get("/api/v1/me/").status_code in (401, 403)
    page = client.get(reverse("accounts:passkey_enrol"))
    assert page.status_code == 200
    assert "requires Admins to sign in with a passkey" in page.content.decode()

    assert register(client, authenticator).status_code == 200
    assert session_device(client).startswith("django_otp_webauthn.webauthncredential/")
    assert client.get(reverse("dashboard")).status_code == 200
    assert client.get("/api/v1/me/").status_code == 200
    assert client.get(reverse("accounts:passkey_enrol"))["Location"] == reverse("dashboard")


@pytest.mark.django_db
def test_admin_session_verified_by_totp_before_the_rule_must_use_the_passkey(
    make_user, authenticator
):
    admin = with_passkey(make_user, authenticator, "Admin")
    client = Client()
    verify_session(client, admin)  # verified by TOTP
    assert client.get(reverse("dashboard")).status_code == 200
    require_passkeys_for_admins()
    response = client.get(reverse("dashboard"))
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    assert passkey_verify(client, authenticator).status_code == 200
    assert client.get(reverse("dashboard")).status_code == 200


@pytest.mark.django_db
def test_the_rule_applies_to_admins_only(staff_client):
    require_passkeys_for_admins()
    assert staff_client("Marketer").get(reverse("dashboard")).status_code == 200
    assert staff_client("Compliance Officer").get(reverse("audit")).status_code == 200


@pytest.mark.django_db
def test_an_admin_cannot_remove_the_last_required_passkey(make_user, authenticator):
    admin = with_passkey(make_user, authenticator, "Admin")
    require_passkeys_for_admins()
    client = Client()
    password_login(client, admin)
    assert passkey_verify(client, authenticator).status_code == 200
    credential = WebAuthnCredential.objects.get(user=admin)
    page = client.get(reverse("accounts:security")).content.decode()
    assert "Required" in page
    response = client.post(
        reverse("accounts:device_remove"), {"device": credential.persistent_id}, follow=True
    )
    assert "register another one before removing" in response.content.decode()
    assert WebAuthnCredential.objects.filter(user=admin).exists()


# --- CSP: no inline script on the passkey pages -------------------------------------


SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def _inline_scripts(html):
    """Script tags that would execute inline code (no src, not a JSON data block)."""
    return [
        attrs
        for attrs in SCRIPT_TAG.findall(html)
        if "src=" not in attrs and 'type="application/json"' not in attrs
    ]


@pytest.mark.django_db
def test_passkey_pages_have_no_inline_script(client, make_user, authenticator, settings):
    user = with_passkey(make_user, authenticator, "Admin")
    password_login(client, user)
    pages = [client.get(reverse("accounts:mfa_verify"))]
    assert passkey_verify(client, authenticator).status_code == 200
    pages += [
        client.get(reverse("accounts:security")),
        client.get(reverse("accounts:passkey_enrol")),
    ]
    for response in pages:
        assert response.status_code == 200
        html = response.content.decode()
        assert _inline_scripts(html) == []
        assert 'id="otp_webauthn_config" type="application/json"' in html
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "/static/js/passkeys.js" in pages[1].content.decode()
    catalog = client.get(reverse("otp_webauthn:js-i18n-catalog"))
    assert catalog.status_code == 200 and "javascript" in catalog["Content-Type"]
