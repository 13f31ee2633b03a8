"""Reading a message and replying to it, and notifying staff of replies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from luxmail import audit, crypto, notifications
from portal import jobs, notices, reporting_hook
from portal.models import PortalMessage, PortalReply, PortalSession
from portal.sanitize import sanitize_html
from portal.services import conversations
from portal.services.config import (
    MAX_REPLIES_PER_MESSAGE,
    MAX_REPLY_CHARS,
    RECIPIENT,
    PortalReplyInvalid,
    PortalUnavailable,
)
from portal.services.conversations import ThreadEntry
from portal.services.messages import _check_open, _ids

# --- reading and replying -----------------------------------------------------------------


@dataclass(frozen=True)
class ReplyView:
    created_at: dt.datetime
    body: str


@dataclass(frozen=True)
class PortalContent:
    subject: str
    html: str  # sanitized (portal/sanitize.py)
    text: str
    expires_at: dt.datetime
    sender_name: str
    replies: list[ReplyView]
    replies_left: int
    thread: list[ThreadEntry]  # patient and staff replies in time order, with attachments


def portal_message_open(
    *, portal_message: PortalMessage, session: PortalSession, request: HttpRequest | None = None
) -> PortalContent:
    """Decrypt the message for its verified recipient and count the read.

    One ``phi.access`` (purpose ``portal.read``) and one ``portal.view`` event per
    view. The first read records a verified human open for reporting. Raises
    :class:`PortalUnavailable` when the message stopped being active.
    """

    if session.portal_message_id != portal_message.pk:
        raise PortalUnavailable("invalid")
    _check_open(portal_message)
    now = timezone.now()
    access = crypto.phi_access(
        actor=RECIPIENT,
        purpose="portal.read",
        target=portal_message,
        request=request,
        details=_ids(portal_message),
    )
    subject = crypto.reveal(portal_message, "subject", access=access) or ""
    html = crypto.reveal(portal_message, "html", access=access) or ""
    text = crypto.reveal(portal_message, "text", access=access) or ""
    replies = list(PortalReply.objects.filter(portal_message=portal_message).order_by("created_at"))
    first = portal_message.first_read_at is None
    with transaction.atomic():
        PortalMessage.objects.filter(pk=portal_message.pk).update(
            read_count=portal_message.read_count + 1,
            last_read_at=now,
            first_read_at=portal_message.first_read_at or now,
        )
        audit.record(
            "portal.view",
            actor=RECIPIENT,
            target=portal_message,
            request=request,
            details={**_ids(portal_message), "first": first},
        )
        if portal_message.message_id is not None:
            opened_id = portal_message.pk
            transaction.on_commit(lambda: _record_verified_open(opened_id, now, first=first))
    thread = conversations.thread_entries(portal_message, access, for_staff=False)
    conversations.recipient_mark_read(portal_message=portal_message)
    portal_message.refresh_from_db()
    sender = portal_message.sender
    return PortalContent(
        subject=subject,
        html=sanitize_html(html),
        text=text,
        expires_at=portal_message.expires_at,
        sender_name=sender.from_name if sender is not None else "",
        replies=[
            ReplyView(r.created_at, crypto.reveal(r, "body", access=access) or "") for r in replies
        ],
        replies_left=max(MAX_REPLIES_PER_MESSAGE - len(replies), 0),
        thread=thread,
    )


def _record_verified_open(portal_message_id: int, occurred_at: dt.datetime, *, first: bool) -> None:
    """A verified portal read is a verified human open (reporting, ``portal_verified``);
    the first one is also a ``portal_read`` webhook event."""

    portal_message = PortalMessage.objects.select_related("campaign", "contact").get(
        pk=portal_message_id
    )
    if portal_message.message_id is None or portal_message.campaign_id is None:
        return
    reporting_hook.record_portal_open(
        message_id=portal_message.message_id,
        campaign_id=portal_message.campaign_id,
        occurred_at=occurred_at,
    )
    if first:
        reporting_hook.emit("portal_read", portal_message=portal_message, occurred_at=occurred_at)


def portal_reply_create(
    *,
    portal_message: PortalMessage,
    session: PortalSession,
    body: str,
    request: HttpRequest | None = None,
) -> PortalReply:
    """Store a secure reply (encrypted) and notify the sender identity's reply-to.

    The notice names no person and quotes nothing: it says a reply is waiting and links
    to the staff inbox. At most ``MAX_REPLIES_PER_MESSAGE`` replies of at most
    ``MAX_REPLY_CHARS`` characters. Audits ``portal.reply``. Raises
    :class:`PortalReplyInvalid` or :class:`PortalUnavailable`.
    """
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise PortalReplyInvalid("Write your reply before sending it.")
    if len(body) > MAX_REPLY_CHARS:
        raise PortalReplyInvalid(
            f"Your reply is too long ({len(body):,} characters); the limit is {MAX_REPLY_CHARS:,}."
        )
    if session.portal_message_id != portal_message.pk:
        raise PortalUnavailable("invalid")
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        _check_open(portal_message)
        if PortalReply.objects.filter(portal_message=portal_message).count() >= (
            MAX_REPLIES_PER_MESSAGE
        ):
            raise PortalReplyInvalid(
                "This message has reached its limit of replies. Please contact us another way."
            )
        reply = PortalReply(portal_message=portal_message)
        crypto.seal(reply, "body", body)
        reply.save()
        if portal_message.done_at is not None:  # a new question reopens a closed conversation
            portal_message.done_at = None
            portal_message.done_by = None
            portal_message.save(update_fields=["done_at", "done_by"])
        audit.record(
            "portal.reply",
            actor=RECIPIENT,
            target=portal_message,
            request=request,
            details={**_ids(portal_message), "reply_id": reply.pk, "characters": len(body)},
        )

        notifications.notify(
            kind="portal_reply",
            title="A patient replied to a secure message",
            link=reverse("portal:conversation", args=[portal_message.uuid]),
        )
        reporting_hook.emit(
            "portal_reply", portal_message=portal_message, occurred_at=reply.created_at
        )
        reply_id = reply.pk
        transaction.on_commit(lambda: _enqueue_reply_notice(reply_id))
    return reply


def _enqueue_reply_notice(reply_id: int) -> None:
    jobs.NOTIFY_REPLY.delay(reply_id)


def portal_reply_notify(*, reply_id: int) -> bool:
    """E-mail the sender identity's reply-to (or From) that a reply waits in LuxMail.

    Idempotent enough for a retried task (a second notice is harmless and has no PHI).
    Returns whether the relay or MX accepted it. Audits ``portal.reply_notified``.
    """

    reply = PortalReply.objects.select_related("portal_message__sender").get(pk=reply_id)
    accepted = notices.send_reply_notice(reply=reply)
    audit.record(
        "portal.reply_notified",
        target=reply.portal_message,
        details={**_ids(reply.portal_message), "reply_id": reply.pk, "accepted": accepted},
    )
    return accepted
