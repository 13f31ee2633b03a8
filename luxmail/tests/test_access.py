"""Who gets what: anonymous, password-only and MFA-verified sessions; lockout."""

import re

import pyotp
import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from luxmail.models import AuditEvent

STAFF_PAGES = ["dashboard", "audit", "settings", "api_keys", "accounts:security"]


def _totp(user):
    import base64

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return pyotp.TOTP(base64.b32encode(device.bin_key).decode()).now()


def _password_login(client, user):
    return client.post(
        reverse("accounts:login"), {"username": user.username, "password": user.test_password}
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", STAFF_PAGES)
def test_anonymous_gets_login_redirect(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_anonymous_gets_no_admin_and_no_api(client):
    assert client.get("/admin/").status_code == 302
    assert client.get("/api/v1/me/").status_code in (401, 403)
    assert client.get("/api/schema/").status_code in (401, 403)


@pytest.mark.django_db
@pytest.mark.parametrize("name", STAFF_PAGES)
def test_password_only_session_is_sent_to_the_second_factor(client, make_user, name):
    user = make_user("Admin")
    assert _password_login(client, user).status_code == 302
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))


@pytest.mark.django_db
def test_dev_outbox_is_behind_the_mfa_gate(client, make_user):
    # The outbox shows mail that may carry PHI: never open to a password-only session.
    user = make_user("Admin")
    _password_login(client, user)
    response = client.get("/dev/outbox/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))


@pytest.mark.django_db
def test_password_only_session_gets_no_admin_and_no_api(client, make_user):
    user = make_user("Admin")
    _password_login(client, user)
    admin = client.get("/admin/")
    assert admin.status_code == 302 and "/admin/" not in admin["Location"].split("?")[0]
    assert client.get("/api/v1/me/").status_code in (401, 403)


@pytest.mark.django_db
def test_user_without_device_is_sent_to_enrolment(client, make_user):
    user = make_user("Marketer", totp=False)
    _password_login(client, user)
    response = client.get(reverse("dashboard"))
    assert response["Location"].startswith(reverse("accounts:mfa_enrol"))


@pytest.mark.django_db
def test_totp_verified_session_gets_pages_admin_and_api(client, make_user):
    user = make_user("Admin")
    _password_login(client, user)
    response = client.post(reverse("accounts:mfa_verify"), {"token": _totp(user)})
    assert response.status_code == 302
    for name in STAFF_PAGES:
        assert client.get(reverse(name)).status_code == 200, name
    assert client.get("/admin/").status_code == 200
    me = client.get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["principal"] == user.username
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "auth.login" in actions and "auth.mfa_verified" in actions


@pytest.mark.django_db
def test_role_limits_pages(staff_client):
    viewer = staff_client("Viewer")
    assert viewer.get(reverse("dashboard")).status_code == 200
    assert viewer.get(reverse("audit")).status_code == 403
    assert viewer.get(reverse("settings")).status_code == 403
    officer = staff_client("Compliance Officer")
    assert officer.get(reverse("audit")).status_code == 200
    assert officer.get(reverse("settings")).status_code == 403


@pytest.mark.django_db
def test_wrong_totp_codes_lock_the_account(client, make_user, settings):
    user = make_user("Admin")
    _password_login(client, user)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(reverse("accounts:mfa_verify"), {"token": "000000"})
        assert response.status_code == 200
        body = response.content.decode()
        # After a few wrong codes the device also pauses and the page says for how long.
        assert "not valid" in body or "Too many attempts — try again in" in body
    response = client.post(reverse("accounts:mfa_verify"), {"token": "000000"})
    assert response.status_code == 403
    assert "temporarily locked" in response.content.decode()
    # Locked: neither the right code nor a fresh password login gets in.
    fresh = Client()
    response = _password_login(fresh, user)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="auth.lockout").exists()
    assert AuditEvent.objects.filter(action="auth.login_failed", details__stage="otp").count() >= 4


@pytest.mark.django_db
def test_wrong_passwords_lock_the_account(client, make_user, settings):
    user = make_user("Admin")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("accounts:login"), {"username": user.username, "password": "nope"})
    response = _password_login(client, user)
    assert response.status_code == 403
    assert "temporarily locked" in response.content.decode()


@pytest.mark.django_db
def test_idle_and_absolute_session_limits(client, make_user, settings):
    import time_machine
    from django.utils import timezone

    assert settings.SESSION_COOKIE_AGE == 15 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST
    user = make_user("Admin")
    from luxmail.testing import verify_session

    verify_session(client, user)
    assert client.get(reverse("dashboard")).status_code == 200
    start = timezone.now()
    # Idle for 16 minutes: the session is gone.
    with time_machine.travel(start + timezone.timedelta(minutes=16)):
        assert client.get(reverse("dashboard")).status_code == 302
    verify_session(client, user)
    start = timezone.now()
    # Busy every 10 minutes (never idle) for 12 hours: the absolute limit ends it.
    statuses = []
    for step in range(1, 12 * 6 + 2):
        with time_machine.travel(start + timezone.timedelta(minutes=10 * step)):
            response = client.get(reverse("dashboard"))
            statuses.append(response.status_code)
    assert set(statuses[:-2]) == {200}
    assert response.status_code == 302
    assert "expired=1" in response["Location"]


# --- lockout across both steps, and unlocking ----------------------------------------


def _lock_by_otp(client, user, limit):
    _password_login(client, user)
    for _ in range(limit):
        response = client.post(reverse("accounts:mfa_verify"), {"token": "000000"})
    assert response.status_code == 403
    return response


@pytest.mark.django_db
def test_signing_in_again_does_not_forgive_wrong_codes(client, make_user, settings):
    """Someone with the password cannot reset the OTP counter by logging in again."""
    user = make_user("Admin")
    for _round in range(2):
        fresh = Client()
        _password_login(fresh, user)
        for _ in range(settings.AXES_FAILURE_LIMIT - 2):
            fresh.post(reverse("accounts:mfa_verify"), {"token": "000000"})
    response = _password_login(Client(), user)
    assert response.status_code == 403
    assert "temporarily locked" in response.content.decode()


@pytest.mark.django_db
def test_a_complete_sign_in_forgives_earlier_failures(client, make_user, settings):
    from axes.models import AccessAttempt

    user = make_user("Admin")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(reverse("accounts:login"), {"username": user.username, "password": "nope"})
    assert AccessAttempt.objects.filter(username=user.username).exists()
    _password_login(client, user)
    # The password alone does not clear the record; the second factor does.
    assert AccessAttempt.objects.filter(username=user.username).exists()
    client.post(reverse("accounts:mfa_verify"), {"token": _totp(user)})
    assert not AccessAttempt.objects.filter(username=user.username).exists()


@pytest.mark.django_db
def test_locked_page_says_what_happened_and_for_how_long(client, make_user, settings):
    user = make_user("Admin")
    page = _lock_by_otp(client, user, settings.AXES_FAILURE_LIMIT).content.decode()
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert f"locked for {minutes} minutes" in page
    assert "ask an Admin to unlock it" in page


@pytest.mark.django_db
def test_admin_unlocks_an_account_from_the_user_list(make_user, staff_client, settings):
    user = make_user("Marketer")
    _lock_by_otp(Client(), user, settings.AXES_FAILURE_LIMIT)
    assert _password_login(Client(), user).status_code == 403
    admin = staff_client("Admin")
    response = admin.post(
        "/admin/luxmail/user/",
        {"action": "unlock_sign_in", "_selected_action": [user.pk]},
        follow=True,
    )
    assert "Sign-in unlocked for 1 account(s)" in response.content.decode()
    assert _password_login(Client(), user).status_code == 302
    event = AuditEvent.objects.get(action="auth.unlock")
    assert event.actor_id == admin.user.pk
    assert event.details["username"] == user.username


@pytest.mark.django_db
def test_admin_unlocks_an_account_by_deleting_the_axes_record(make_user, staff_client, settings):
    from axes.models import AccessAttempt

    user = make_user("Marketer")
    _lock_by_otp(Client(), user, settings.AXES_FAILURE_LIMIT)
    admin = staff_client("Admin")
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and user.username in listing.content.decode()
    attempt = AccessAttempt.objects.get(username=user.username)
    response = admin.post(
        f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not AccessAttempt.objects.filter(username=user.username).exists()
    assert _password_login(Client(), user).status_code == 302
    assert AuditEvent.objects.filter(action="auth.unlock", actor_id=admin.user.pk).exists()
    # The submitted codes were not kept in the lockout record.
    assert "000000" not in str(AccessAttempt.objects.values_list("post_data", flat=True))


# --- enrolment of a new user -----------------------------------------------------------


def _secret_from(page):
    return re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")


@pytest.mark.django_db
def test_new_user_enrols_totp_and_gets_backup_codes(client, make_user):
    user = make_user("Marketer", totp=False)
    _password_login(client, user)
    page = client.get(reverse("accounts:mfa_enrol"))
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]  # the secret must not be cached
    html = page.content.decode()
    assert "<svg" in html  # the QR code is inline SVG
    secret = _secret_from(html)
    # The clock stands still: the correct code arrives at the same instant as the typo
    # and is still accepted (no pause after a single wrong code).
    with time_machine.travel(timezone.now(), tick=False):
        wrong = client.post(reverse("accounts:mfa_enrol"), {"token": "123456"})
        assert "not valid" in wrong.content.decode()
        code = pyotp.TOTP(secret).now()
        done = client.post(reverse("accounts:mfa_enrol"), {"token": code})
    assert done.status_code == 200
    assert "no-store" in done["Cache-Control"]
    codes = re.findall(r"<code>(\d{8})</code>", done.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get(reverse("dashboard")).status_code == 200
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert "mfa.enrol" in actions and "mfa.backup_codes" in actions
    assert AuditEvent.objects.filter(
        action="auth.login_failed", details__stage="totp_enrol"
    ).exists()
    # A backup code works once.
    other = Client()
    _password_login(other, user)
    assert other.post(reverse("accounts:mfa_verify"), {"token": codes[0]}).status_code == 302
    assert AuditEvent.objects.filter(
        action="auth.mfa_verified", details__factor="backup_codes"
    ).exists()
    again = Client()
    _password_login(again, user)
    assert again.post(reverse("accounts:mfa_verify"), {"token": codes[0]}).status_code == 200


@pytest.mark.django_db
def test_adding_a_second_authenticator_keeps_backup_codes(staff_client):
    from luxmail.accounts import services

    client = staff_client("Marketer")
    services.backup_codes_generate(user=client.user)
    page = client.get(reverse("accounts:mfa_enrol")).content.decode()
    assert "Add an authenticator app" in page
    code = pyotp.TOTP(_secret_from(page)).now()
    response = client.post(reverse("accounts:mfa_enrol"), {"token": code}, follow=True)
    assert "Authenticator app added." in response.content.decode()
    assert TOTPDevice.objects.filter(user=client.user, confirmed=True).count() == 2
    from luxmail.accounts import selectors

    assert selectors.backup_codes_left(client.user) == 10


@pytest.mark.django_db
def test_enrolment_needs_a_verified_session_once_a_factor_exists(client, make_user):
    user = make_user("Marketer")
    _password_login(client, user)
    response = client.get(reverse("accounts:mfa_enrol"))
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    assert TOTPDevice.objects.filter(user=user, confirmed=False).count() == 0


# --- admin site ----------------------------------------------------------------------


@pytest.mark.django_db
def test_verified_non_staff_user_gets_403_from_admin_not_a_redirect_loop(staff_client):
    marketer = staff_client("Marketer")
    response = marketer.get("/admin/", follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) <= 2
