"""Audit events as readable text, for the audit page, the admin and the export.

``{{ event.details|audit_detail_lines }}`` gives ``key: value`` lines (not a Python
repr): nested mappings flattened with dotted keys (``after.role: Admin``), lists joined
with commas, booleans shown as yes/no, keys in words (``template_phi_fields`` →
``template PHI fields``). ``{{ event.action|audit_action }}`` says what happened in
words (``campaign.approve`` → "Campaign approved (PHI)"), and
``{{ event|audit_target }}`` names the object (``campaign 3f2a…``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

register = template.Library()

EMPTY = "—"


def _value(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_value(item) for item in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
    return str(value)


def _words(key: Any) -> str:
    text = str(key).replace("_", " ")
    return " ".join(_ACRONYMS.get(word, word) for word in text.split(" "))


_ACRONYMS = {"phi": "PHI", "id": "ID", "ip": "IP", "mfa": "MFA", "api": "API", "dkim": "DKIM"}


def _lines(details: Mapping[str, Any], prefix: str) -> list[str]:
    lines: list[str] = []
    for key, value in details.items():
        name = f"{prefix}{_words(key)}"
        if isinstance(value, Mapping) and value:
            lines += _lines(value, f"{name}.")
        else:
            lines.append(f"{name}: {_value(value)}")
    return lines


def detail_lines(details: Any) -> list[str]:
    """``details`` (the JSON of an audit event) as ``key: value`` lines."""
    if details is None or details == {}:
        return []
    if not isinstance(details, Mapping):
        return [_value(details)]
    return _lines(details, "")


@register.filter
def audit_detail_lines(details: Any) -> list[str]:
    return detail_lines(details)


# What happened, in words; actions not listed read as "Campaign: start failed".
ACTIONS: dict[str, str] = {
    "auth.login": "Signed in",
    "auth.logout": "Signed out",
    "auth.login_failed": "Sign-in failed",
    "auth.lockout": "Locked out after failed sign-ins",
    "auth.unlock": "Sign-in lockout cleared",
    "auth.mfa_verified": "Second factor verified",
    "auth.session_expired": "Session expired",
    "auth.permission": "Access refused",
    "mfa.enrol": "Second factor enrolled",
    "mfa.remove": "Second factor removed",
    "user.roles_change": "Roles changed",
    "phi.access": "PHI decrypted",
    "contact.view_phi": "Contact PHI viewed",
    "contacts.export": "Contacts exported",
    "audit.verify": "Audit chain verified",
    "audit.export": "Audit trail exported",
    "audit.purge": "Expired audit events purged",
    "settings.change": "Organization settings changed",
    "api_key.create": "API key created",
    "api_key.revoke": "API key revoked",
    "campaign.create": "Campaign created",
    "campaign.update": "Campaign edited",
    "campaign.schedule": "Campaign scheduled",
    "campaign.start": "Campaign started sending",
    "campaign.start_failed": "Campaign could not start",
    "campaign.approval_request": "PHI approval requested",
    "campaign.approve": "PHI campaign approved",
    "campaign.approval_reject": "PHI approval rejected",
    "campaign.approval_withdraw": "PHI approval withdrawn",
    "template.update": "Template edited",
    "segment.update": "Segment edited",
    "portal.open": "Secure message opened in the portal",
}


def action_text(action: str) -> str:
    """``action`` in words (an unknown one: its dotted name made readable)."""
    if action in ACTIONS:
        return ACTIONS[action]
    area, _, verb = action.partition(".")
    if not verb:
        return _words(area).capitalize()
    return f"{_words(area).capitalize()}: {_words(verb)}"


def target_text(target_type: str, target_id: str) -> str:
    """``campaigns.campaign`` + id → ``campaign 3f2a…`` (empty when there is none)."""
    if not target_type and not target_id:
        return ""
    model = target_type.rpartition(".")[2] or "object"
    short = target_id if len(target_id) <= 12 else target_id[:8] + "…"
    return f"{model} {short}".strip()


@register.filter
def audit_action(action: str) -> str:
    return action_text(action)


@register.filter
def audit_target(event: Any) -> str:
    return target_text(event.target_type, event.target_id)
