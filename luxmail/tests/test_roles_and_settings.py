"""Role groups and their PHI permissions; the organization settings page."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from luxmail import org, roles
from luxmail.forms import OrgSettingsForm
from luxmail.models import AuditEvent, OrgSettings

ALL_ROLES = [
    roles.ADMIN,
    roles.MARKETER,
    roles.PHI_MARKETER,
    roles.COMPLIANCE_OFFICER,
    roles.VIEWER,
]


# --- roles ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_role_groups_exist_after_migrate():
    # No fixture here calls sync_roles: the groups come from the migrations alone.
    assert set(Group.objects.values_list("name", flat=True)) >= set(ALL_ROLES)
    assert set(roles.ROLE_PERMISSIONS) == set(ALL_ROLES)
    for role in ALL_ROLES:
        assert Group.objects.get(name=role).permissions.filter(codename="use_app").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("codename", ["view_phi", "export_phi"])
def test_only_admin_and_phi_marketer_hold_phi_permissions(codename):
    permission = Permission.objects.get(content_type__app_label="luxmail", codename=codename)
    holders = set(permission.group_set.values_list("name", flat=True))
    assert holders == {roles.ADMIN, roles.PHI_MARKETER}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ALL_ROLES)
def test_users_see_phi_only_in_phi_roles(make_user, role):
    user = make_user(role)
    assert user.has_perm("luxmail.view_phi") is (role in (roles.ADMIN, roles.PHI_MARKETER))
    assert user.has_perm("luxmail.export_phi") is (role in (roles.ADMIN, roles.PHI_MARKETER))
    assert user.has_perm("luxmail.use_app")
    assert user.has_perm("luxmail.manage_settings") is (role == roles.ADMIN)
    assert user.has_perm("luxmail.manage_api_keys") is (role == roles.ADMIN)
    assert user.has_perm("luxmail.view_audit") is (role in (roles.ADMIN, roles.COMPLIANCE_OFFICER))


@pytest.mark.django_db
def test_sync_roles_repairs_a_tampered_group():
    marketer = Group.objects.get(name=roles.MARKETER)
    phi = Permission.objects.get(content_type__app_label="luxmail", codename="view_phi")
    marketer.permissions.add(phi)
    roles.sync_roles()
    assert not marketer.permissions.filter(pk=phi.pk).exists()
    roles.sync_roles()  # idempotent
    assert Group.objects.filter(name__in=ALL_ROLES).count() == len(ALL_ROLES)


def test_wildcards_never_grant_phi():
    assert not roles._matches("luxmail.view_phi", ["luxmail.*"])
    assert not roles._matches("luxmail.export_phi", ["luxmail.*", "contacts.*"])
    assert roles._matches("luxmail.view_phi", ["*"])
    assert roles._matches("luxmail.view_phi", ["luxmail.view_phi"])


# --- organization settings page -------------------------------------------------------


def _form_data(obj, **changes):
    data = {}
    for name in OrgSettingsForm.Meta.fields:
        value = changes.get(name, getattr(obj, name))
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value
    return data


@pytest.mark.django_db
def test_admin_changes_settings_and_the_change_is_audited_with_old_and_new(staff_client):
    client = staff_client("Admin")
    current = org.get_settings()
    page = client.get(reverse("settings"))
    assert page.status_code == 200 and 'name="postal_address"' in page.content.decode()
    response = client.post(
        reverse("settings"),
        _form_data(
            current,
            name="Riverside Health",
            require_passkey_for_admins=True,
            exclude_automated_events=False,
        ),
        follow=True,
    )
    assert "Settings saved." in response.content.decode()
    saved = OrgSettings.objects.get()
    assert saved.name == "Riverside Health"
    assert saved.require_passkey_for_admins and not saved.exclude_automated_events
    event = AuditEvent.objects.get(action="settings.change")
    assert event.actor_id == client.user.pk
    assert event.target_type == "luxmail.orgsettings"
    assert event.details == {
        "changed": {
            "name": ["LuxMail Demo Health", "Riverside Health"],
            "exclude_automated_events": [True, False],
            "require_passkey_for_admins": [False, True],
        }
    }
    # Saving without a change writes no event.
    client.post(reverse("settings"), _form_data(OrgSettings.objects.get()))
    assert AuditEvent.objects.filter(action="settings.change").count() == 1


@pytest.mark.django_db
def test_invalid_settings_are_refused_next_to_the_field(staff_client):
    client = staff_client("Admin")
    current = org.get_settings()
    response = client.post(reverse("settings"), _form_data(current, name="", portal_expiry_days=-3))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_name_error"' in html and 'id="id_portal_expiry_days_error"' in html
    assert OrgSettings.objects.get().portal_expiry_days == 30
    assert not AuditEvent.objects.filter(action="settings.change").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role", [roles.MARKETER, roles.PHI_MARKETER, roles.COMPLIANCE_OFFICER, roles.VIEWER]
)
def test_non_admins_get_403_from_the_settings_page(staff_client, role):
    client = staff_client(role)
    current = org.get_settings()
    assert client.get(reverse("settings")).status_code == 403
    response = client.post(reverse("settings"), _form_data(current, name="Taken over"))
    assert response.status_code == 403
    assert OrgSettings.objects.get().name == "LuxMail Demo Health"
    assert not AuditEvent.objects.filter(action="settings.change").exists()


@pytest.mark.django_db
def test_settings_pages_highlight_their_menu_entry(staff_client):
    client = staff_client("Admin")
    for name in ("settings", "api_keys"):
        html = client.get(reverse(name)).content.decode()
        assert f'href="{reverse("settings")}" aria-current="page"' in html
    html = client.get(reverse("audit")).content.decode()
    assert f'href="{reverse("audit")}" aria-current="page"' in html
