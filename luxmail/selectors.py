"""Read-side queries for the core app (audit log listing, API keys)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from luxmail import audit_checkpoints
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


def audit_status() -> dict[str, Any]:
    """The last verification (newest ``audit.verify`` event) and the last checkpoint.

    ``checkpoint_problem`` says why the checkpoint file's last line cannot be shown.
    """

    last_verification = AuditEvent.objects.filter(action="audit.verify").order_by("-id").first()
    checkpoint, problem = None, ""
    try:
        checkpoint = audit_checkpoints.latest_quick()
    except audit_checkpoints.CheckpointError as error:
        problem = str(error)
    except OSError as error:
        problem = f"the checkpoint file cannot be read ({error.strerror})"
    return {
        "last_verification": last_verification,
        "last_checkpoint": checkpoint,
        "checkpoint_problem": problem,
    }


def api_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("created_by").order_by("-created_at")
