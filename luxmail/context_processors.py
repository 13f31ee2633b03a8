from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from luxmail import breakglass, notifications, org


def luxmail(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    signed_in = bool(user and user.is_authenticated)
    return {
        "org_name": org.get_settings().name,
        "notifications_unread": (
            notifications.unread_count(user=user) if signed_in else 0  # type: ignore[arg-type]
        ),
        "can_view_phi": bool(signed_in and user.has_perm("luxmail.view_phi")),  # type: ignore[union-attr]
        # The in-app notice of break-glass access: Admins see unacknowledged grants,
        # the user their own open window (luxmail/breakglass.py).
        "break_glass_notices": (
            breakglass.grants_unacknowledged().count()
            if signed_in and user.has_perm("luxmail.manage_staff")  # type: ignore[union-attr]
            else 0
        ),
        "break_glass_until": (
            breakglass.open_until(user.pk) if signed_in else None  # type: ignore[union-attr]
        ),
    }
