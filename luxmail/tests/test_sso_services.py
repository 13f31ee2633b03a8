"""Single sign-on rules without an IdP: MFA assertion, group mapping, provisioning and
hostile assertion values (luxmail/accounts/sso/services.py), and the sign-in page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from luxmail import conf, roles
from luxmail.accounts.sso import services
from luxmail.accounts.sso.checks import group_roles_name_known_roles
from luxmail.models import AuditEvent


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"amr": ["pwd", "mfa"]}, True),
        ({"amr": ["hwk"]}, True),
        ({"amr": "otp"}, True),
        ({"amr": ["pwd"]}, False),
        ({"amr": {"mfa": True}}, False),
        ({"amr": 7}, False),
        ({"amr": None}, False),
        ({"acr": "urn:loa:mfa"}, True),
        ({"acr": "urn:loa:password"}, False),
        ({"acr": ["urn:loa:mfa"]}, False),
        ({}, False),
    ],
)
def test_oidc_mfa_assertion(settings, claims, expected):
    settings.LUXMAIL_OIDC_MFA_ACR = ["urn:loa:mfa"]
    assert services.oidc_mfa_asserted(claims) is expected


def test_saml_mfa_assertion():
    assert services.saml_mfa_asserted(["https://refeds.org/profile/mfa"])
    assert not services.saml_mfa_asserted(
        ["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"]
    )
    assert not services.saml_mfa_asserted([])


def test_group_roles_setting_is_parsed_and_unknown_roles_ignored(settings):
    settings.LUXMAIL_SSO_GROUP_ROLES = [
        "lux=Admin",
        "phi team=PHI Marketer",
        "=Admin",
        "nobody=",
        "junk",
        "a=b=Viewer",
        "x=Superhero",
    ]
    assert conf.sso_group_roles() == {
        "lux": "Admin",
        "phi team": "PHI Marketer",
        "a=b": "Viewer",
        "x": "Superhero",
    }
    assert services.mapped_roles(["lux", "phi team", "x", "other"]) == {
        roles.ADMIN,
        roles.PHI_MARKETER,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "verified", "reason"),
    [
        (None, True, "no_email"),
        (["a@b.example"], True, "no_email"),
        ("", True, "no_email"),
        ("x" * 300 + "@staff.example", True, "no_email"),
        ("lee@staff.example", False, "email_unverified"),
        ("nobody@staff.example", True, "unknown_user"),
    ],
)
def test_hostile_or_unknown_assertions_are_refused_and_audited(email, verified, reason):
    user = services.resolve_user(
        protocol="oidc", email=email, email_verified=verified, groups=[], mfa=True, request=None
    )
    assert user is None
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.details == {"stage": "sso", "protocol": "oidc", "reason": reason}


@pytest.mark.django_db
def test_inactive_account_is_refused(make_user):
    make_user(roles.MARKETER, username="moe", is_active=False)
    assert (
        services.resolve_user(
            protocol="saml", email="moe@staff.example", groups=[], mfa=False, request=None
        )
        is None
    )
    assert AuditEvent.objects.get(action="auth.login_failed").details["reason"] == "inactive"


@pytest.mark.django_db
def test_without_mapping_roles_stay_as_luxmail_has_them(make_user):
    user = make_user(roles.VIEWER, username="ned")
    signed_in = services.resolve_user(
        protocol="oidc", email="NED@staff.example", groups=["lux"], mfa=False, request=None
    )
    assert signed_in == user
    assert signed_in.luxmail_sso == services.SignIn(protocol="oidc", mfa=False)
    assert list(user.groups.values_list("name", flat=True)) == [roles.VIEWER]


@pytest.mark.django_db
def test_huge_group_lists_are_bounded(settings, make_user):
    settings.LUXMAIL_SSO_GROUP_ROLES = ["lux=Marketer"]
    user = make_user(roles.VIEWER, username="oli")
    groups = [f"g{i}" * 50 for i in range(100_000)] + ["lux"]
    # Beyond MAX_GROUPS the rest is not read: the mapped group came too late.
    assert (
        services.resolve_user(
            protocol="oidc", email="oli@staff.example", groups=groups, mfa=False, request=None
        )
        is None
    )
    assert list(user.groups.values_list("name", flat=True)) == [roles.VIEWER]


@pytest.mark.django_db
def test_provisioning_refuses_a_taken_username(settings, make_user):
    settings.LUXMAIL_SSO_GROUP_ROLES = ["lux=Marketer"]
    settings.LUXMAIL_SSO_CREATE_USERS = True
    make_user(roles.VIEWER, username="pat@other.example")
    assert (
        services.resolve_user(
            protocol="oidc", email="pat@other.example", groups=["lux"], mfa=False, request=None
        )
        is None
    )
    assert get_user_model().objects.filter(email="pat@other.example").count() == 0


@pytest.mark.django_db
def test_login_page_shows_a_button_per_configured_provider(settings, client):
    settings.LUXMAIL_OIDC_CLIENT_ID = "luxmail"
    settings.LUXMAIL_OIDC_PROVIDER_NAME = "Okta"
    settings.LUXMAIL_SAML_IDP_METADATA = "/nonexistent/idp.xml"
    settings.LUXMAIL_SAML_PROVIDER_NAME = "Hospital AD"
    page = client.get("/accounts/login/?next=/campaigns/").content.decode()
    assert 'href="/oidc/authenticate/?next=/campaigns/"' in page
    assert "Sign in with Okta" in page
    assert 'href="/saml2/login/?next=/campaigns/"' in page
    assert "Sign in with Hospital AD" in page


def test_system_check_names_unknown_roles_and_malformed_entries(settings):

    settings.LUXMAIL_SSO_GROUP_ROLES = ["lux=Admin", "phi=PHI Marketer"]
    assert group_roles_name_known_roles() == []
    settings.LUXMAIL_SSO_GROUP_ROLES = ["lux=Admn", "junk"]
    assert [m.id for m in group_roles_name_known_roles()] == [
        "luxmail.sso.E001",
        "luxmail.sso.E002",
    ]
