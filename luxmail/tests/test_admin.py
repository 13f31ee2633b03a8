"""The Django admin: verified sessions only, no secrets shown, audit log read-only."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse
from django_otp.admin import OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice

from luxmail import audit, org
from luxmail.api import services as api_services
from luxmail.models import ApiKey, AuditEvent, OrgSettings


def _login_password_only(client, user):
    client.post(
        reverse("accounts:login"), {"username": user.username, "password": user.test_password}
    )


# --- the site itself -------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_site_requires_a_verified_second_factor(make_user, staff_client):
    assert isinstance(admin.site, OTPAdminSite)
    user = make_user("Admin")
    request = RequestFactory().get("/admin/")
    request.user = user
    user.is_verified = lambda: False  # what OTPMiddleware sets for a password-only session
    assert not admin.site.has_permission(request)
    user.is_verified = lambda: True
    assert admin.site.has_permission(request)

    anonymous = Client().get("/admin/")
    assert anonymous["Location"].startswith("/admin/login/")
    password_only = Client()
    _login_password_only(password_only, make_user("Admin"))
    for path in ("/admin/", "/admin/luxmail/auditevent/", "/admin/luxmail/user/"):
        response = password_only.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("accounts:mfa_verify")), path
    verified = staff_client("Admin")
    assert verified.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_admin_login_page_sends_to_the_luxmail_sign_in(client):
    response = client.get("/admin/login/?next=/admin/luxmail/user/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2Fluxmail%2Fuser%2F"


# --- audit log ------------------------------------------------------------------------


@pytest.mark.django_db
def test_audit_events_cannot_be_added_changed_or_deleted_in_admin(make_user):
    superuser = make_user("Admin", is_superuser=True)
    client = Client()
    from luxmail.testing import verify_session

    verify_session(client, superuser)
    event = audit.record("test.event", actor=superuser, details={"n": 1})
    before = event.hash
    base = "/admin/luxmail/auditevent/"
    page = client.get(f"{base}{event.pk}/change/")
    assert page.status_code == 200  # viewable
    html = page.content.decode()
    assert 'name="_save"' not in html and "test.event" in html
    posted = client.post(f"{base}{event.pk}/change/", {"action": "forged", "details": "{}"})
    assert posted.status_code == 403
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    listing = client.get(base).content.decode()
    assert "delete_selected" not in listing
    bulk = client.post(base, {"action": "delete_selected", "_selected_action": [event.pk]})
    assert bulk.status_code in (200, 302)
    event.refresh_from_db()
    assert event.hash == before and event.action == "test.event"
    assert audit.verify().ok


@pytest.mark.django_db
def test_audit_admin_filters_and_search(staff_client):
    client = staff_client("Compliance Officer")
    audit.record("contact.view_phi", actor="username:alice", phi=True)
    audit.record("segment.count", actor="username:bob")
    base = "/admin/luxmail/auditevent/"
    assert client.get(base).status_code == 200
    by_action = client.get(base, {"action": "segment.count"}).content.decode()
    assert "username:bob" in by_action and "username:alice" not in by_action
    by_phi = client.get(base, {"phi__exact": "1"}).content.decode()
    assert "username:alice" in by_phi and "username:bob" not in by_phi
    by_search = client.get(base, {"q": "alice"}).content.decode()
    assert "username:alice" in by_search and "username:bob" not in by_search
    by_action_search = client.get(base, {"q": "segment"}).content.decode()
    assert "username:bob" in by_action_search and "username:alice" not in by_action_search
    from django.utils import timezone

    this_year = client.get(base, {"created_at__year": timezone.now().year}).content.decode()
    assert "username:alice" in this_year and "username:bob" in this_year
    long_ago = client.get(base, {"created_at__year": 2001}).content.decode()
    assert "username:alice" not in long_ago


# --- users ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_user_admin_shows_roles_and_factors_but_never_the_password_hash(staff_client, make_user):
    client = staff_client("Admin")
    user = make_user("PHI Marketer", username="pat")
    listing = client.get("/admin/luxmail/user/").content.decode()
    assert "PHI Marketer" in listing
    assert "1 app(s), 0 passkey(s), 0 backup code(s)" in listing
    page = client.get(f"/admin/luxmail/user/{user.pk}/change/").content.decode()
    _algorithm, _, rest = user.password.partition("$")
    assert user.password not in page
    assert rest.split("$")[-1] not in page
    assert "Set a new password" in page
    assert client.get(f"/admin/luxmail/user/{user.pk}/delete/").status_code == 403


@pytest.mark.django_db
def test_role_changes_in_admin_are_audited(staff_client, make_user):
    client = staff_client("Admin")
    user = make_user("Marketer", username="sam")
    phi = Group.objects.get(name="PHI Marketer")
    response = client.post(
        f"/admin/luxmail/user/{user.pk}/change/",
        {
            "username": "sam",
            "first_name": "",
            "last_name": "",
            "email": "sam@staff.example",
            "is_active": "on",
            "groups": [phi.pk],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(user.groups.values_list("name", flat=True)) == ["PHI Marketer"]
    event = AuditEvent.objects.get(action="user.roles_change")
    assert event.details == {"before": ["Marketer"], "after": ["PHI Marketer"], "via": "admin"}
    assert event.actor_id == client.user.pk
    change = AuditEvent.objects.get(action="admin.change")
    assert change.target_id == str(user.uuid)


@pytest.mark.django_db
def test_admin_removes_a_lost_factor_and_it_is_audited(staff_client, make_user):
    client = staff_client("Admin")
    user = make_user("Marketer")
    device = TOTPDevice.objects.get(user=user)
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in page  # OTP_ADMIN_HIDE_SENSITIVE_DATA
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    response = client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(action="mfa.remove")
    assert event.details == {"factor": "totp", "by_admin": True}
    assert event.target_id == str(user.uuid)


@pytest.mark.django_db
def test_roles_are_read_only_in_admin(staff_client):
    client = staff_client("Admin")
    group = Group.objects.get(name="Marketer")
    page = client.get(f"/admin/auth/group/{group.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    response = client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "Hacked"})
    assert response.status_code == 403
    assert client.get("/admin/auth/group/add/").status_code == 403


# --- API keys -------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_key_admin_never_shows_the_hash_and_only_revokes(staff_client):
    client = staff_client("Admin")
    issued = api_services.api_key_create(name="Billing", scopes=["reports:read"], actor=None)
    key = issued.key
    listing = client.get("/admin/luxmail/apikey/").content.decode()
    assert key.prefix in listing and "Settings → API keys" in listing
    page = client.get(f"/admin/luxmail/apikey/{key.pk}/change/").content.decode()
    assert key.secret_hash not in page and issued.secret not in page
    assert 'name="_save"' not in page
    assert client.get("/admin/luxmail/apikey/add/").status_code == 403
    assert (
        client.post(f"/admin/luxmail/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    response = client.post(
        "/admin/luxmail/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert "1 API key(s) revoked." in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_key.revoke", actor_id=client.user.pk).exists()
    assert ApiKey.objects.count() == 1


# --- organization settings -------------------------------------------------------------


@pytest.mark.django_db
def test_org_settings_admin_is_a_singleton_changed_through_the_service(staff_client):
    client = staff_client("Admin")
    settings_obj = org.get_settings()
    assert client.get("/admin/luxmail/orgsettings/")["Location"] == (
        f"/admin/luxmail/orgsettings/{settings_obj.pk}/change/"
    )
    assert client.get("/admin/luxmail/orgsettings/add/").status_code == 403
    delete = client.post(f"/admin/luxmail/orgsettings/{settings_obj.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    form = {
        "name": "Springfield Clinic",
        "postal_address": settings_obj.postal_address,
        "footer_text": settings_obj.footer_text,
        "seed_addresses": settings_obj.seed_addresses,
        "contact_default_time_zone": settings_obj.contact_default_time_zone,
        "quiet_hours_start": settings_obj.quiet_hours_start,
        "quiet_hours_end": settings_obj.quiet_hours_end,
        "default_secure_policy": settings_obj.default_secure_policy,
        "exclude_automated_events": "on",
        "count_unknown_events": "on",
        "portal_expiry_days": 14,
        "message_retention_days": settings_obj.message_retention_days,
        "event_retention_days": settings_obj.event_retention_days,
        "bounce_retention_days": settings_obj.bounce_retention_days,
        "portal_retention_days": settings_obj.portal_retention_days,
        "import_retention_days": settings_obj.import_retention_days,
        "delivery_mode": settings_obj.delivery_mode,
        "encrypted_subject": settings_obj.encrypted_subject,
        "portal_notification_subject": settings_obj.portal_notification_subject,
        "portal_notification_text": settings_obj.portal_notification_text,
    }
    response = client.post(f"/admin/luxmail/orgsettings/{settings_obj.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert OrgSettings.objects.count() == 1
    event = AuditEvent.objects.get(action="settings.change")
    assert event.details["changed"] == {
        "name": ["LuxMail Demo Health", "Springfield Clinic"],
        "portal_expiry_days": [30, 14],
    }
    assert event.actor_id == client.user.pk
