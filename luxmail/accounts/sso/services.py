"""Who may sign in by single sign-on, with which roles, and whether the IdP's MFA counts.

Audit actions written here: ``auth.sso_provisioned`` (an account created at first
sign-in; details: protocol, roles), ``auth.sso_roles`` (roles changed by the group
mapping; details: added, removed) and ``auth.login_failed`` with stage ``sso`` and a
reason (``unknown_user``, ``inactive``, ``no_role``, ``no_email``, ``email_unverified``,
``ambiguous``). The sign-in itself is ``auth.login`` (factor ``sso``, see luxmail.signals).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest

from luxmail import audit, conf, roles

# Session key: the pk of the user whose sign-in the IdP verified with a second factor.
SSO_MFA_SESSION_KEY = "luxmail_sso_mfa"
# Longest email / group name taken from an assertion (anything longer is refused/ignored).
MAX_EMAIL = 254
MAX_GROUPS = 500
MAX_GROUP_NAME = 256


@dataclass(frozen=True)
class SignIn:
    """What an IdP asserted about one sign-in, attached to the user as ``luxmail_sso``."""

    protocol: str  # "oidc" | "saml"
    mfa: bool


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        return [item for item in value if isinstance(item, str)]
    return []


def oidc_mfa_asserted(claims: dict[str, Any]) -> bool:
    """The ID token says the IdP checked a second factor (``amr`` or ``acr``)."""
    amr = set(_strings(claims.get("amr")))
    acr = claims.get("acr")
    return bool(amr & set(conf.oidc_mfa_amr())) or (
        isinstance(acr, str) and acr in conf.oidc_mfa_acr()
    )


def saml_mfa_asserted(authn_contexts: Iterable[str]) -> bool:
    """An AuthnContextClassRef of the assertion is one that counts as MFA."""
    return bool(set(authn_contexts) & set(conf.saml_mfa_contexts()))


def mapped_roles(groups: Iterable[str]) -> set[str]:
    """The LuxMail roles the IdP groups map to (unknown roles are ignored)."""
    mapping = conf.sso_group_roles()
    known = set(roles.ROLE_PERMISSIONS)
    return {
        mapping[group]
        for group in list(groups)[:MAX_GROUPS]
        if group in mapping and mapping[group] in known
    }


def _failed(protocol: str, email: str, reason: str, request: HttpRequest | None) -> None:
    audit.record(
        "auth.login_failed",
        actor=f"username:{email[:150]}",
        request=request,
        details={"stage": "sso", "protocol": protocol, "reason": reason},
    )


def protocol_failed(*, protocol: str, request: HttpRequest | None) -> None:
    """A sign-in the protocol layer refused (token, signature, IdP unreachable): audited."""
    _failed(protocol, "", "protocol", request)


def _set_roles(user: Any, wanted: set[str], *, protocol: str, request: HttpRequest | None) -> None:
    """Make the user's role groups exactly ``wanted`` (other groups stay); audited."""
    current = set(
        user.groups.filter(name__in=roles.ROLE_PERMISSIONS).values_list("name", flat=True)
    )
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if not added and not removed:
        return
    if removed:
        user.groups.remove(*Group.objects.filter(name__in=removed))
    if added:
        user.groups.add(*Group.objects.filter(name__in=added))
    audit.record(
        "auth.sso_roles",
        actor=user,
        target=user,
        request=request,
        details={"protocol": protocol, "added": added, "removed": removed},
    )


def resolve_user(
    *,
    protocol: str,
    email: Any,
    groups: Iterable[str],
    mfa: bool,
    request: HttpRequest | None,
    email_verified: Any = True,
) -> Any | None:
    """The account an SSO assertion signs in to, or None (the refusal is audited).

    The account is found by email (case-insensitive). Without one, a new account is
    created only under ``LUXMAIL_SSO_CREATE_USERS`` and only when the groups map to a
    role. With a group mapping configured, the IdP decides the roles: they are set to
    the mapped ones at every sign-in, and a sign-in whose groups map to no role is
    refused (the account keeps its roles).
    """
    if not isinstance(email, str) or not email.strip() or len(email) > MAX_EMAIL:
        _failed(protocol, "", "no_email", request)
        return None
    email = email.strip()
    if email_verified is False:
        _failed(protocol, email, "email_unverified", request)
        return None
    group_names = [g[:MAX_GROUP_NAME] for g in _strings(groups)[:MAX_GROUPS]]
    mapping_on = bool(conf.sso_group_roles())
    wanted = mapped_roles(group_names)
    user_model = get_user_model()
    users = list(user_model.objects.filter(email__iexact=email)[:2])
    if len(users) > 1:
        _failed(protocol, email, "ambiguous", request)
        return None
    with transaction.atomic():
        if not users:
            if not conf.sso_create_users():
                _failed(protocol, email, "unknown_user", request)
                return None
            if not wanted:
                _failed(protocol, email, "no_role", request)
                return None
            if user_model.objects.filter(username=email[:150]).exists():
                _failed(protocol, email, "ambiguous", request)
                return None
            user: Any = user_model(username=email[:150], email=email)
            user.set_unusable_password()
            user.save()
            user.groups.set(Group.objects.filter(name__in=wanted))
            audit.record(
                "auth.sso_provisioned",
                actor=user,
                target=user,
                request=request,
                details={"protocol": protocol, "roles": sorted(wanted)},
            )
        else:
            user = users[0]
            if not user.is_active:
                _failed(protocol, email, "inactive", request)
                return None
            if mapping_on:
                if not wanted:
                    _failed(protocol, email, "no_role", request)
                    return None
                _set_roles(user, wanted, protocol=protocol, request=request)
    user.luxmail_sso = SignIn(protocol=protocol, mfa=mfa)
    return user


def sign_in_completed(*, request: HttpRequest, user: Any) -> None:
    """After ``auth.login``: remember in the session that the IdP verified MFA.

    Called from the ``user_logged_in`` receiver; a session whose sign-in carries no
    IdP MFA goes through LuxMail's own second factor as usual.
    """
    sign_in: SignIn | None = getattr(user, "luxmail_sso", None)
    if sign_in is None or not sign_in.mfa:
        return
    request.session[SSO_MFA_SESSION_KEY] = user.pk
    audit.record(
        "auth.mfa_verified",
        actor=user,
        request=request,
        details={"factor": f"idp:{sign_in.protocol}"},
    )


def login_details(user: Any) -> dict[str, Any] | None:
    """``auth.login`` details for an SSO sign-in, None for a password sign-in."""
    sign_in: SignIn | None = getattr(user, "luxmail_sso", None)
    if sign_in is None:
        return None
    return {"factor": "sso", "protocol": sign_in.protocol, "idp_mfa": sign_in.mfa}


def buttons() -> list[dict[str, str]]:
    """The "Sign in with …" buttons of the sign-in page (URL names and labels)."""
    found = []
    if conf.oidc_enabled():
        found.append({"url_name": "oidc_authentication_init", "name": conf.oidc_provider_name()})
    if conf.saml_enabled():
        found.append({"url_name": "saml2_login", "name": conf.saml_provider_name()})
    return found
