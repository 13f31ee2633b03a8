from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from luxmail import notifications, org


def luxmail(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    signed_in = bool(user and user.is_authenticated)
    return {
        "org_name": org.get_settings().name,
        "notifications_unread": notifications.unread_count() if signed_in else 0,
        "can_view_phi": bool(user and user.is_authenticated and user.has_perm("luxmail.view_phi")),
    }
