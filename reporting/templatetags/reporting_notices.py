"""``{% webhook_notice %}``: tells Admins about endpoints disabled after failures."""

from __future__ import annotations

from typing import Any

from django import template

from reporting import selectors

register = template.Library()


@register.inclusion_tag("reporting/_webhook_notice.html", takes_context=True)
def webhook_notice(context: dict[str, Any]) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("luxmail.manage_settings"):
        return {"endpoints": []}
    return {"endpoints": list(selectors.webhook_endpoints_disabled_by_failures()[:5])}
