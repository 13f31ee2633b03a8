"""What the campaigns app gives the retention purge (``luxmail/retention.py``).

* ``messages`` — delivery records (``Message``, no content) whose campaign was queued
  before the cutoff and that reached a final state; their delivery proof goes with
  them. Report rows and rollups stay (the purge transaction tells the triggers).
* ``bounces`` — bounce and complaint records (``BounceEvent``: status and a redacted
  diagnostic, no addresses). Suppressions they caused are not touched: a suppression
  is a standing instruction, not a record.

A hold on a campaign or a contact keeps its rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from campaigns.models import BounceEvent, Message, MessageState
from luxmail import retention
from luxmail.holds import ActiveHolds

_FINAL = [
    MessageState.SENT,
    MessageState.FAILED,
    MessageState.BOUNCED,
    MessageState.UNKNOWN,
    MessageState.SKIPPED,
    MessageState.CANCELLED,
]


def _messages_expired(cutoff: datetime) -> QuerySet[Any]:
    return Message.objects.filter(queued_at__lt=cutoff, state__in=_FINAL)


def _messages_unheld(rows: QuerySet[Any], holds: ActiveHolds) -> QuerySet[Any]:
    if holds.campaign_ids:
        rows = rows.exclude(campaign_id__in=holds.campaign_ids)
    if holds.contact_ids:
        rows = rows.exclude(contact_id__in=holds.contact_ids)
    return rows


def _bounces_expired(cutoff: datetime) -> QuerySet[Any]:
    return BounceEvent.objects.filter(received_at__lt=cutoff)


def _bounces_unheld(rows: QuerySet[Any], holds: ActiveHolds) -> QuerySet[Any]:
    if holds.campaign_ids:
        rows = rows.exclude(
            Q(message__isnull=False) & Q(message__campaign_id__in=holds.campaign_ids)
        )
    if holds.contact_ids:
        rows = rows.exclude(Q(contact_id__isnull=False) & Q(contact_id__in=holds.contact_ids))
    return rows


def register() -> None:
    retention.register(
        retention.Purge(
            name="messages",
            label="Delivery records (messages)",
            days="message_retention_days",
            model=Message,
            expired=_messages_expired,
            exclude_held=_messages_unheld,
            order=90,  # after events, bounces and portal messages that point at messages
        )
    )
    retention.register(
        retention.Purge(
            name="bounces",
            label="Bounce and complaint records",
            days="bounce_retention_days",
            model=BounceEvent,
            expired=_bounces_expired,
            exclude_held=_bounces_unheld,
        )
    )
