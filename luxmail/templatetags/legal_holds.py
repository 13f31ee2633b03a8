"""``{% legal_hold_banner scope object_id %}``: the active legal holds on the data of a
page (organization settings, a campaign, a contact), with release and place forms for
those who may manage holds. An organization-wide hold shows on every such page."""

from __future__ import annotations

from typing import Any

from django import template

from luxmail import holds
from luxmail.models import HoldScope

register = template.Library()


@register.inclusion_tag("holds/_banner.html", takes_context=True)
def legal_hold_banner(context: template.Context, scope: str, object_id: int = 0) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    own = holds.holds_on(scope, int(object_id or 0))
    org_wide = [] if scope == HoldScope.ORGANIZATION else holds.holds_on(HoldScope.ORGANIZATION)
    return {
        "holds": own,
        "org_holds": org_wide,
        "scope": scope,
        "scope_label": scope,
        "object_id": int(object_id or 0),
        "can_manage": bool(user and user.has_perm("luxmail.manage_legal_hold")),
        "next": request.get_full_path() if request is not None else "/",
        "csrf_token": context.get("csrf_token"),
    }
