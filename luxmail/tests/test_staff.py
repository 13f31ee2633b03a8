"""Staff management (issue 17 §6): invitations, roles, deactivation, MFA reset, sessions,
and the passkey requirement for PHI roles."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.core import mail, signing
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from luxmail import org, roles, staff
from luxmail.models import AuditEvent, Invitation, StaffSession, User
from luxmail.testing import free_port, verify_session

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://\S+/staff/invitation/(\S+)/")


def _invite(admin, email="new.person@staff.example", role_names=("Marketer",)):
    client = Client()
    verify_session(client, admin)
    return client


def _token_from_mail() -> str:
    match = LINK.search(mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def test_admin_invites_by_email_and_the_link_works_once(
    make_user, django_capture_on_commit_callbacks
):
    admin = make_user(roles.ADMIN)
    client = _invite(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/staff/", {"email": "New.Person@staff.example", "roles": ["PHI Marketer"]}
        )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.person@staff.example"]
    token = _token_from_mail()
    invitation = Invitation.objects.get()
    assert invitation.secret_hash not in mail.outbox[0].body  # only the hash is stored
    assert AuditEvent.objects.filter(action="staff.invite", actor_id=admin.pk).exists()
    # The pending invitation is listed.
    assert "new.person@staff.example" in client.get("/staff/").content.decode()

    anonymous = Client()
    page = anonymous.get(f"/staff/invitation/{token}/")
    assert page.status_code == 200 and "PHI Marketer" in page.content.decode()
    form = {
        "username": "nperson",
        "first_name": "New",
        "last_name": "Person",
        "password1": "a long and unusual passphrase 42",
        "password2": "a long and unusual passphrase 42",
    }
    done = anonymous.post(f"/staff/invitation/{token}/", form)
    assert done.status_code == 302 and done["Location"] == "/accounts/login/"
    user = User.objects.get(username="nperson")
    assert roles.role_names(user) == ["PHI Marketer"] and user.email == invitation.email
    assert user.check_password(form["password1"])
    assert not TOTPDevice.objects.filter(user=user).exists()  # enrols at first sign-in
    assert AuditEvent.objects.filter(action="staff.invite_accept", actor_id=user.pk).exists()
    # Single use.
    again = anonymous.post(f"/staff/invitation/{token}/", {**form, "username": "other"})
    assert again.status_code == 404
    assert not User.objects.filter(username="other").exists()


def test_expired_revoked_and_tampered_links_are_refused(make_user):
    admin = make_user(roles.ADMIN)
    invitation, link = staff.invitation_create(
        email="late@staff.example", role_names=["Viewer"], actor=admin
    )
    token = link.rstrip("/").rsplit("/", 1)[1]
    client = Client()
    with time_machine.travel(timezone.now() + timedelta(hours=73)):
        assert client.get(f"/staff/invitation/{token}/").status_code == 404
    assert client.get(f"/staff/invitation/{token}/").status_code == 200
    tampered = signing.dumps({"i": invitation.pk, "s": "guess"}, salt="luxmail.staff.invitation")
    assert client.get(f"/staff/invitation/{tampered}/").status_code == 404
    staff.invitation_revoke(invitation=invitation, actor=admin)
    assert client.get(f"/staff/invitation/{token}/").status_code == 404


@pytest.mark.parametrize(
    "token",
    # A literal in signing.dumps' shape (payload:timestamp:signature) signed with another
    # key: test ids must be the same in every xdist worker, so no dumps() at collection.
    [
        "x",
        "a" * 5000,
        "e30:1:abc",
        "%00%ff",
        "abc.def:ghi",
        "WzEsMl0:1vP3Kx:Zm9yZ2VkLXNpZ25hdHVyZS1ub3QtbHV4bWFpbA",
    ],
)
def test_hostile_invitation_tokens_get_a_friendly_404(db, token):
    response = Client().post(f"/staff/invitation/{token}/", {"username": "x"})
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_weak_password_and_taken_username_are_explained(make_user):
    admin = make_user(roles.ADMIN, username="taken")
    _, link = staff.invitation_create(email="p@staff.example", role_names=["Viewer"], actor=admin)
    path = link.split("://", 1)[1].split("/", 1)[1]
    client = Client()
    weak = client.post(
        f"/{path}",
        {"username": "fresh", "password1": "password", "password2": "password"},
    )
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    taken = client.post(
        f"/{path}",
        {
            "username": "TAKEN",
            "password1": "an unusual passphrase 99",
            "password2": "an unusual passphrase 99",
        },
    )
    assert "taken" in taken.content.decode()


def test_an_active_users_address_cannot_be_invited(make_user):
    admin = make_user(roles.ADMIN)
    other = make_user(roles.VIEWER)
    with pytest.raises(staff.StaffError):
        staff.invitation_create(email=other.email.upper(), role_names=["Viewer"], actor=admin)
    with pytest.raises(staff.StaffError, match="Unknown role"):
        staff.invitation_create(email="z@staff.example", role_names=["Root"], actor=admin)


def test_only_staff_managers_reach_the_pages(staff_client):
    for role in (roles.MARKETER, roles.COMPLIANCE_OFFICER, roles.VIEWER):
        assert staff_client(role).get("/staff/").status_code == 403
    assert staff_client(roles.ADMIN).get("/staff/").status_code == 200


def test_roles_are_assigned_and_audited(make_user):
    admin = make_user(roles.ADMIN)
    member = make_user(roles.VIEWER)
    client = _invite(admin)
    response = client.post(f"/staff/{member.pk}/roles/", {"roles": ["Compliance Officer"]})
    assert response.status_code == 302
    member.refresh_from_db()
    assert roles.role_names(member) == ["Compliance Officer"] and member.is_staff
    event = AuditEvent.objects.get(action="staff.roles")
    assert event.details == {"before": ["Viewer"], "after": ["Compliance Officer"]}
    with pytest.raises(staff.StaffError, match="own Admin role"):
        staff.staff_roles_set(user=admin, role_names=["Viewer"], actor=admin)


def test_sessions_are_listed_and_ended(make_user):
    admin = make_user(roles.ADMIN)
    member = make_user(roles.MARKETER)
    browser = Client()
    browser.force_login(member)  # a real login(): user_logged_in records the session
    assert StaffSession.objects.filter(user=member).count() == 1
    rows = staff.staff_sessions(member)
    assert len(rows) == 1
    manager = _invite(admin)
    page = manager.get(f"/staff/{member.pk}/")
    assert f"…{rows[0].key_hint}" in page.content.decode()
    manager.post(f"/staff/{member.pk}/sessions/end/", {"session": str(rows[0].session_id)})
    assert staff.staff_sessions(member) == []
    assert not Session.objects.filter(session_key=browser.session.session_key).exists()
    assert browser.get("/").status_code == 302  # signed out
    assert AuditEvent.objects.filter(action="staff.session_end").exists()


def test_deactivation_needs_a_reason_and_signs_out(make_user):
    admin = make_user(roles.ADMIN)
    member = make_user(roles.MARKETER)
    browser = Client()
    browser.force_login(member)
    manager = _invite(admin)
    manager.post(f"/staff/{member.pk}/active/", {"active": "0", "reason": "short"})
    member.refresh_from_db()
    assert member.is_active
    manager.post(f"/staff/{member.pk}/active/", {"active": "0", "reason": "Left the practice"})
    member.refresh_from_db()
    assert not member.is_active and staff.staff_sessions(member) == []
    event = AuditEvent.objects.get(action="staff.deactivate")
    assert event.details["reason"] == "Left the practice" and event.details["sessions_ended"] == 1
    with pytest.raises(staff.StaffError):
        staff.staff_set_active(user=admin, active=False, reason="testing myself", actor=admin)


def test_mfa_reset_removes_every_factor_with_an_audited_reason(make_user):
    admin = make_user(roles.ADMIN)
    member = make_user(roles.MARKETER)
    StaticDevice.objects.create(user=member, name="backup", confirmed=True)
    manager = _invite(admin)
    manager.post(f"/staff/{member.pk}/mfa-reset/", {"reason": ""})
    assert TOTPDevice.objects.filter(user=member).exists()
    manager.post(f"/staff/{member.pk}/mfa-reset/", {"reason": "Lost phone, ticket 4411"})
    assert not TOTPDevice.objects.filter(user=member).exists()
    assert not StaticDevice.objects.filter(user=member).exists()
    event = AuditEvent.objects.get(action="mfa.reset")
    assert event.target_id == str(member.uuid)
    assert event.details["reason"] == "Lost phone, ticket 4411" and event.details["totp"] == 1


def test_passkeys_can_be_required_for_phi_roles(make_user):
    org.org_settings_update(actor=None, require_passkey_for_phi_roles=True)
    phi_marketer = make_user(roles.PHI_MARKETER)
    marketer = make_user(roles.MARKETER)
    for user, blocked in ((phi_marketer, True), (marketer, False)):
        client = Client()
        verify_session(client, user)
        response = client.get("/contacts/")
        if blocked:
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/mfa/passkey/")
        else:
            assert response.status_code == 200


def test_a_relay_failure_is_explained_not_a_500(make_user, settings):
    settings.EMAIL_BACKEND = "luxmail.mail.RelayEmailBackend"
    settings.LUXMAIL_SMTP_HOST = "127.0.0.1"
    settings.LUXMAIL_SMTP_PORT = free_port()  # nothing listens there
    settings.LUXMAIL_SMTP_SECURITY = "none"
    client = _invite(make_user(roles.ADMIN))
    response = client.post("/staff/", {"email": "x@staff.example", "roles": ["Viewer"]})
    assert response.status_code == 200
    assert "could not be sent" in response.content.decode()
