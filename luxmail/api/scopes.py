"""API scopes and the permissions that grant them to signed-in staff.

An API key carries an explicit list of scopes. A staff member using the API from a
verified browser session holds the scopes whose permission their role grants.
"""

from __future__ import annotations

from typing import Any

SCOPES: dict[str, tuple[str, str]] = {
    # scope: (description, permission that grants it to a staff session)
    "contacts:read": ("Read contacts, lists, segments (PHI masked)", "contacts.view_contact"),
    "contacts:write": (
        "Create, update and delete contacts, lists, segments",
        "contacts.change_contact",
    ),
    "suppressions:write": (
        "Add and lift suppressions (audited)",
        "contacts.delete_suppression",
    ),
    "phi:read": ("Read PHI fields", "luxmail.view_phi"),
    "phi:write": ("Write PHI fields", "luxmail.view_phi"),
    "campaigns:read": ("Read templates, senders, campaigns", "campaigns.view_campaign"),
    "campaigns:write": (
        "Create and edit templates, senders, campaigns",
        "campaigns.change_campaign",
    ),
    "campaigns:send": (
        "Schedule, pause and cancel campaigns; send messages",
        "campaigns.send_campaign",
    ),
    "reports:read": ("Read reports and events", "reporting.view_report"),
    "webhooks:manage": ("Manage outbound webhooks", "luxmail.manage_settings"),
    "journeys:write": ("Manage journeys and push trigger events", "campaigns.change_journey"),
    "bounces:write": (
        "Submit feedback mail from a relay, reprocess unread mail, set the feedback policy",
        "luxmail.manage_settings",
    ),
}

SCOPE_CHOICES = [(name, f"{name} — {desc}") for name, (desc, _) in SCOPES.items()]


def scopes_for_user(user: Any) -> set[str]:
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    return {name for name, (_, perm) in SCOPES.items() if user.has_perm(perm)}


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"Unknown scope(s): {', '.join(unknown)}")
    return sorted(set(scopes))
