"""Tracking events and rollups: ingest, rebuild, portal reads, tracking options."""

from __future__ import annotations

import time as time_module
from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from luxmail import audit
from luxmail.actors import Actor
from reporting import buffer, ingest, rollups
from reporting.models import TrackedLink, TrackingOptions

# --- tracking events and rollups ----------------------------------------------------------


def tracking_events_ingest(*, limit: int = 2000, max_batches: int = 50) -> Any:
    """Classify and store buffered tracking events (``reporting.ingest``), then fold the
    rollup journal (``rollups.fold``).

    Idempotent and safe to run anywhere at any time: one run at a time (others return
    at once with ``busy``), each batch one transaction, an event stored at most once.
    Returns the :class:`reporting.ingest.IngestReport`.
    """

    report = ingest.ingest(limit=limit, max_batches=max_batches)
    # The send workers' and this run's report changes wait in the journal: fold them.
    rollups.fold()
    return report


def rollups_rebuild(*, actor: Actor) -> Any:
    """Recompute per-message report rows and every rollup from raw data.

    Equal to what incremental maintenance produced (tested); send workers and the
    ingester wait while it runs. Audits ``reports.rollups_rebuild`` with the row counts.
    """

    result = rollups.rebuild()
    audit.record(
        "reports.rollups_rebuild",
        actor=actor,
        details={
            "messages": result.messages,
            "campaign_rows": result.campaign_rows,
            "domain_rows": result.domain_rows,
            "event_rows": result.event_rows,
        },
    )
    return result


def portal_read_record(*, message_id: int, campaign_id: int, at: datetime | None = None) -> str:
    """Record a verified recipient's read in the secure portal as a human open.

    Goes through the same durable buffer as the open pixel (the ingester labels it
    ``human`` / ``portal_verified``). Returns where the entry was buffered.
    """

    moment = at.timestamp() if at is not None else time_module.time()
    return buffer.append(
        {"k": "o", "m": message_id, "c": campaign_id, "t": round(moment, 6), "mt": "GET", "pv": 1}
    )


def tracking_options_set(
    *, campaign: Any, honeypot: bool, actor: Actor, request: HttpRequest | None = None
) -> Any:
    """Turn the hidden honeypot link of a campaign on or off (before it starts).

    Raises :class:`TrackingOptionsError` once the campaign's links are frozen (it has
    started). Audits ``campaign.tracking_options``.
    """

    with transaction.atomic():
        if (
            campaign.started_at is not None
            or TrackedLink.objects.filter(campaign=campaign).exists()
        ):
            raise TrackingOptionsError(
                "This campaign has started; its links, and the honeypot, are fixed."
            )
        options, _created = TrackingOptions.objects.select_for_update().get_or_create(
            campaign=campaign
        )
        if options.honeypot != honeypot:
            options.honeypot = honeypot
            options.save()
            audit.record(
                "campaign.tracking_options",
                actor=actor,
                request=request,
                target=campaign,
                details={"honeypot": honeypot},
            )
    return options


class TrackingOptionsError(ValueError):
    """Tracking options cannot be changed now (message says why)."""
