"""What the campaigns app gives the retention purge (``luxmail/retention.py``).

* ``messages`` — delivery records (``Message``, no content) whose campaign was queued
  before the cutoff and that reached a final state; their delivery proof goes with
  them. Report rows and rollups stay (the purge transaction tells the triggers).
* ``bounces`` — bounce and complaint records (``BounceEvent``: status and a redacted
  diagnostic, no addresses). Suppressions they caused are not touched: a suppression
  is a standing instruction, not a record.
* ``feedback_mail`` — mail the bounce server kept because no parser could read it
  (``UnparsedFeedback``, encrypted), by its last arrival; it names no campaign or
  contact, so no hold but an organization hold covers it.
* ``sender_events`` — sender-health evidence (sender-side refusals, authentication-failure
  and DMARC reports: counts and redacted text, no addresses).

A hold on a campaign or a contact keeps its rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from campaigns.models import (
    BounceEvent,
    Message,
    MessageState,
    SenderEvent,
    UnparsedFeedback,
)
from luxmail import retention

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


def _bounces_expired(cutoff: datetime) -> QuerySet[Any]:
    return BounceEvent.objects.filter(received_at__lt=cutoff)


def _feedback_mail_expired(cutoff: datetime) -> QuerySet[Any]:
    return UnparsedFeedback.objects.filter(last_received_at__lt=cutoff)


def _sender_events_expired(cutoff: datetime) -> QuerySet[Any]:
    return SenderEvent.objects.filter(received_at__lt=cutoff)


def register() -> None:
    retention.register(
        retention.Purge(
            name="messages",
            label="Delivery records (messages)",
            days="message_retention_days",
            model=Message,
            expired=_messages_expired,
            exclude_held=retention.unheld(campaign="campaign_id", contact="contact_id"),
            partition_key="queued_at",
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
            exclude_held=retention.unheld(campaign="message__campaign_id", contact="contact_id"),
        )
    )
    retention.register(
        retention.Purge(
            name="feedback_mail",
            label="Unread mail kept by the bounce server",
            days="bounce_retention_days",
            model=UnparsedFeedback,
            expired=_feedback_mail_expired,
        )
    )
    retention.register(
        retention.Purge(
            name="sender_events",
            label="Sender-health evidence",
            days="bounce_retention_days",
            model=SenderEvent,
            expired=_sender_events_expired,
            exclude_held=retention.unheld(campaign="campaign_id"),
        )
    )
