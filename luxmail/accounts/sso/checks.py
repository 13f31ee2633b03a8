"""System check: every role named in ``LUXMAIL_SSO_GROUP_ROLES`` exists in roles.py.

A misspelt role would otherwise be ignored, and every sign-in of that group refused
with "no_role".
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from luxmail import conf, roles


@checks.register(checks.Tags.security)
def group_roles_name_known_roles(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    entries = [str(entry) for entry in settings.LUXMAIL_SSO_GROUP_ROLES or []]
    unknown = sorted(set(conf.sso_group_roles().values()) - set(roles.ROLE_PERMISSIONS))
    if unknown:
        found.append(
            checks.Error(
                f"LUXMAIL_SSO_GROUP_ROLES names unknown roles: {', '.join(unknown)}.",
                hint=f"Roles: {', '.join(roles.ROLE_PERMISSIONS)}.",
                id="luxmail.sso.E001",
            )
        )
    if len(conf.sso_group_roles()) < len(entries):
        found.append(
            checks.Error(
                "LUXMAIL_SSO_GROUP_ROLES has entries that are not group=Role, or a group twice.",
                id="luxmail.sso.E002",
            )
        )
    return found
