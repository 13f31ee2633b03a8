"""Read-side queries for the core app (audit log listing, API keys)."""

from __future__ import annotations

from django.db.models import QuerySet

from luxmail.models import ApiKey, AuditEvent


def audit_events(
    *, action: str = "", actor: str = "", phi_only: bool = False
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.order_by("-id")
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    if phi_only:
        qs = qs.filter(phi=True)
    return qs


def api_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("created_by").order_by("-created_at")
