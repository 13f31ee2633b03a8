"""Roles are Django groups whose permissions follow DESIGN.md §4.

``sync_roles`` (run by migration 0003 and after every ``migrate``) creates the groups
and gives each the permissions that match its patterns, so permissions of models
added by later apps are picked up automatically. Only Admin and PHI Marketer hold
``luxmail.view_phi``.
"""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Any

from django.apps import apps as global_apps
from django.db.models.signals import post_migrate

ADMIN = "Admin"
MARKETER = "Marketer"
PHI_MARKETER = "PHI Marketer"
COMPLIANCE_OFFICER = "Compliance Officer"
VIEWER = "Viewer"

_MARKETER = [
    "luxmail.use_app",
    "contacts.view_*",
    "contacts.add_*",
    "contacts.change_*",
    "campaigns.view_*",
    "campaigns.add_*",
    "campaigns.change_*",
    "campaigns.send_campaign",
    "reporting.view_*",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    ADMIN: ["*"],
    MARKETER: _MARKETER,
    PHI_MARKETER: [*_MARKETER, "luxmail.view_phi", "luxmail.export_phi"],
    COMPLIANCE_OFFICER: [
        "luxmail.use_app",
        "luxmail.view_audit",
        "luxmail.view_auditevent",
        "luxmail.manage_legal_hold",
        "luxmail.view_legalhold",
        "campaigns.export_evidence",
        "contacts.view_*",
        "campaigns.view_*",
        "portal.view_*",
        "reporting.view_*",
        # Separation of duties: only this role signs off PHI campaigns (issue 17).
        "campaigns.approve_phi_campaign",
    ],
    # Viewers read reports and, masked, the contacts and campaigns behind them
    # (issue 3: "a Viewer or Marketer sees masked PHI in UI, API and exports").
    VIEWER: ["luxmail.use_app", "reporting.view_*", "campaigns.view_*", "contacts.view_*"],
}
# Roles that hold luxmail.view_phi (the "PHI roles" of the passkey requirement).
PHI_ROLES = (ADMIN, PHI_MARKETER)
# Never granted by a pattern: PHI access is given by name only (see the PHI roles above).
_NAMED_ONLY = {"luxmail.view_phi", "luxmail.export_phi"}
# Never granted by a pattern, not even Admin's "*": approving a PHI campaign is the
# Compliance Officer's alone, so whoever builds campaigns cannot also approve them.
_ROLE_ONLY = {"campaigns.approve_phi_campaign"}


def _matches(codename: str, patterns: list[str]) -> bool:
    if codename in patterns:
        return True
    if codename in _ROLE_ONLY:
        return False
    if codename in _NAMED_ONLY and "*" not in patterns:
        return False
    return any(fnmatch(codename, pattern) for pattern in patterns)


def sync_roles(apps: Any = None) -> None:
    """Create the role groups and set their permissions. Idempotent."""
    if apps is None:
        apps = global_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    permissions = list(permission_model.objects.select_related("content_type"))
    for role, patterns in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = [
            p for p in permissions if _matches(f"{p.content_type.app_label}.{p.codename}", patterns)
        ]
        group.permissions.set(wanted)


_OWN_APPS = {"luxmail", "contacts", "campaigns", "portal", "reporting"}


def _after_migrate(sender: Any, **kwargs: Any) -> None:
    # post_migrate reaches every installed app, in INSTALLED_APPS order, after each
    # migrate (and after each flush of a transactional test): each app's permissions
    # exist only after its own post_migrate, so sync once, after the last of our apps.
    own = [config.name for config in global_apps.get_app_configs() if config.name in _OWN_APPS]
    if own and sender.name == own[-1]:
        sync_roles()


def connect() -> None:

    post_migrate.connect(_after_migrate, dispatch_uid="luxmail.roles.sync")


def role_names(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))
