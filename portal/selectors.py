"""Reads of the portal: finding a message by its link, its state, staff listings."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from portal.models import PortalMessage, PortalReply

STATES = ("active", "expired", "revoked", "locked")


def link_hash(token: str) -> bytes:
    """The lookup key of a link token (what the row stores; the token itself is not)."""
    return hashlib.sha256(token.encode()).digest()


def portal_message_by_token(token: str) -> PortalMessage | None:
    """The message a link token opens, or None (the token's hash is the lookup key)."""
    if not token or len(token) > 64:
        return None
    return PortalMessage.objects.select_related("sender").filter(link_hash=link_hash(token)).first()


def portal_message_state(portal_message: PortalMessage, *, now: dt.datetime | None = None) -> str:
    """``revoked``, ``expired``, ``locked`` or ``active`` (in that order of precedence)."""
    now = now or timezone.now()
    if portal_message.revoked_at is not None:
        return "revoked"
    if portal_message.expires_at <= now:
        return "expired"
    if portal_message.locked_at is not None:
        return "locked"
    return "active"


def portal_messages(
    *, campaign_id: int | None = None, contact_id: int | None = None, state: str = ""
) -> QuerySet[PortalMessage]:
    """Portal messages for the staff list, newest first, with reply counts (no content)."""
    now = timezone.now()
    rows = PortalMessage.objects.select_related("campaign", "sender").annotate(
        reply_count=Count("replies"),
        unread_replies=Count("replies", filter=Q(replies__staff_read_at__isnull=True)),
    )
    if campaign_id is not None:
        rows = rows.filter(campaign_id=campaign_id)
    if contact_id is not None:
        rows = rows.filter(contact_id=contact_id)
    if state == "revoked":
        rows = rows.filter(revoked_at__isnull=False)
    elif state == "expired":
        rows = rows.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif state == "locked":
        rows = rows.filter(revoked_at__isnull=True, expires_at__gt=now, locked_at__isnull=False)
    elif state == "active":
        rows = rows.filter(revoked_at__isnull=True, expires_at__gt=now, locked_at__isnull=True)
    return rows.order_by("-created_at", "-id")


def portal_replies(*, unread_only: bool = False) -> QuerySet[PortalReply]:
    """Replies for the staff inbox, newest first (bodies stay sealed)."""
    rows = PortalReply.objects.select_related(
        "portal_message", "portal_message__campaign", "staff_read_by"
    )
    if unread_only:
        rows = rows.filter(staff_read_at__isnull=True)
    return rows.order_by("-created_at", "-id")


CONVERSATION_FILTERS = ("open", "mine", "unassigned", "done", "all")


def conversations(*, which: str = "open", user_id: int | None = None) -> QuerySet[PortalMessage]:
    """Portal messages a patient replied to, for the staff inbox (ids and dates only).

    ``open``: not marked done; ``mine``: open and assigned to ``user_id``;
    ``unassigned``: open and nobody's; ``done``; ``all``. Latest patient reply first.
    """
    rows = (
        PortalMessage.objects.filter(replies__isnull=False)
        .select_related("campaign", "assigned_to")
        .annotate(
            reply_count=Count("replies", distinct=True),
            unread_replies=Count(
                "replies", filter=Q(replies__staff_read_at__isnull=True), distinct=True
            ),
            staff_reply_count=Count("staff_replies", distinct=True),
            last_reply_at=Max("replies__created_at"),
        )
    )
    if which in ("open", "mine", "unassigned"):
        rows = rows.filter(done_at__isnull=True)
    if which == "mine":
        rows = rows.filter(assigned_to_id=user_id)
    elif which == "unassigned":
        rows = rows.filter(assigned_to__isnull=True)
    elif which == "done":
        rows = rows.filter(done_at__isnull=False)
    return rows.order_by("-last_reply_at", "-id")


def conversation_assignees() -> list[Any]:
    """Active staff who may answer patients (view PHI and send), by username.

    Checked with ``has_perm`` per user (groups, direct permissions and superusers alike);
    a deployment's staff is small."""
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    return [
        user
        for user in users
        if user.has_perm("luxmail.view_phi") and user.has_perm("campaigns.send_campaign")
    ]
