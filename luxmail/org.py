"""Organization settings: the singleton row and its audited updates."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from luxmail import audit
from luxmail.actors import Actor
from luxmail.models import OrgSettings


def get_settings() -> OrgSettings:
    """The organization's settings (created with defaults on first use)."""
    obj, _ = OrgSettings.objects.get_or_create(pk=1)
    return obj


def time_zone() -> str:
    """The organization's time zone (``LUXMAIL_TIME_ZONE``, an IANA name such as
    ``America/New_York``): times are entered and displayed in it, always labelled."""
    return timezone.get_current_timezone_name() or str(settings.TIME_ZONE)


def time_zone_note() -> str:
    """The sentence shown beside every date and time input."""
    return f"Time zone: {time_zone()} (the organization's)."


def org_settings_update(*, actor: Actor, request: Any = None, **changes: Any) -> OrgSettings:
    """Apply ``changes`` to the settings and audit which fields changed (old and new values).

    Raises ``ValueError`` for an unknown field. Settings hold no PHI, so values are logged.
    """
    with transaction.atomic():
        obj = OrgSettings.objects.select_for_update().get_or_create(pk=1)[0]
        field_names = {f.name for f in OrgSettings._meta.concrete_fields} - {"id", "updated_at"}
        diff: dict[str, list[Any]] = {}
        for name, value in changes.items():
            if name not in field_names:
                raise ValueError(f"Unknown organization setting: {name}")
            old = getattr(obj, name)
            if old != value:
                diff[name] = [old, value]
                setattr(obj, name, value)
        if diff:
            obj.full_clean()
            obj.save()
            audit.record(
                "settings.change",
                actor=actor,
                request=request,
                target=obj,
                details={"changed": diff},
            )
    return obj
