"""Tracking events in the retention purge (``luxmail/retention.py``).

Raw open and click events (``reporting.Event``) older than
``OrgSettings.event_retention_days`` are deleted in batches. What they added to reports
stays: the per-message report rows and the rollups are aggregates, maintained when an
event arrives and never recomputed on delete (docs/tracking.md "Retention"). Only
``reporting.rollups.rebuild`` would count them no more, since it starts from raw data.
A hold on a campaign or a contact keeps its events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from luxmail import retention
from reporting.models import Event


def _expired(cutoff: datetime) -> QuerySet[Any]:
    return Event.objects.filter(occurred_at__lt=cutoff)


def register() -> None:
    retention.register(
        retention.Purge(
            name="events",
            label="Tracking events (opens, clicks)",
            days="event_retention_days",
            model=Event,
            expired=_expired,
            exclude_held=retention.unheld(campaign="campaign_id", contact="message__contact_id"),
            partition_key="occurred_at",
        )
    )
