"""``{% evidence_public_key %}``: publishes the organization's evidence-pack public key
(on the settings page), so an auditor can compare it with a pack's ``pubkey.pem``."""

from __future__ import annotations

from typing import Any

from django import template

from campaigns.evidence import keys, pack

register = template.Library()


@register.inclusion_tag("campaigns/_evidence_key.html")
def evidence_public_key() -> dict[str, Any]:
    key = keys.evidence_key_current()
    return {"key": key, "verify_command": pack.VERIFY_COMMAND}
