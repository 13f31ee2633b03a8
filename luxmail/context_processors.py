from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from luxmail import org


def luxmail(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {
        "org_name": org.get_settings().name,
        "can_view_phi": bool(user and user.is_authenticated and user.has_perm("luxmail.view_phi")),
    }
