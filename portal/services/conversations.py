"""Two-way secure conversations: staff answer patients inside the portal (issue 20, item 3).

A conversation is a :class:`~portal.models.PortalMessage` with its patient replies
(:class:`~portal.models.PortalReply`) and staff replies
(:class:`~portal.models.PortalStaffReply`, files in
:class:`~portal.models.PortalAttachment`). Staff holding ``luxmail.view_phi`` read it;
answering also needs ``campaigns.send_campaign`` (Admin and PHI Marketer). Every read,
reply, download, assignment and closing writes an audit event with ids only; reads and
downloads go through :func:`luxmail.crypto.phi_access`. The patient is told of a staff
reply by an e-mail without PHI: "a new secure message is waiting", and the link.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit, crypto
from luxmail.actors import Actor, actor_has_perm, user_of
from luxmail.models import User
from portal import antivirus, jobs, notices
from portal.attachments import MAX_FILES, AttachmentRejected, CheckedFile, attachment_check
from portal.models import (
    AttachmentScan,
    PortalAttachment,
    PortalMessage,
    PortalReply,
    PortalSession,
    PortalStaffReply,
)
from portal.sanitize import sanitize_html
from portal.services.config import MAX_REPLY_CHARS, RECIPIENT, PortalUnavailable
from portal.services.messages import _check_open, _ids
from portal.services.tokens import link_url

READ_PERM = "luxmail.view_phi"
ANSWER_PERMS = ("luxmail.view_phi", "campaigns.send_campaign")


class ConversationError(Exception):
    """A staff action that cannot be done; ``str()`` is a friendly sentence without PHI."""


@dataclass(frozen=True)
class AttachmentInfo:
    uuid: str
    name: str
    size: int
    content_type: str
    scanned: bool


@dataclass(frozen=True)
class ThreadEntry:
    from_staff: bool
    created_at: dt.datetime
    body: str
    author: str = ""  # staff username (staff view only)
    attachments: list[AttachmentInfo] = field(default_factory=list)


@dataclass(frozen=True)
class StaffThread:
    subject: str
    html: str
    entries: list[ThreadEntry]


@dataclass(frozen=True)
class AttachmentFile:
    name: str
    content_type: str
    data: bytes


def may_answer(actor: Actor) -> bool:
    return all(actor_has_perm(actor, perm) for perm in ANSWER_PERMS)


def _attachment_infos(reply: PortalStaffReply, access: crypto.Access) -> list[AttachmentInfo]:
    return [
        AttachmentInfo(
            uuid=str(item.uuid),
            name=str(crypto.reveal(item, "filename", access=access) or ""),
            size=item.size,
            content_type=item.content_type,
            scanned=item.scan == AttachmentScan.CLEAN,
        )
        for item in reply.attachments.all()
    ]


def thread_entries(
    portal_message: PortalMessage, access: crypto.Access, *, for_staff: bool
) -> list[ThreadEntry]:
    """Patient and staff replies of the message in time order, decrypted under ``access``."""
    entries = [
        ThreadEntry(False, r.created_at, str(crypto.reveal(r, "body", access=access) or ""))
        for r in PortalReply.objects.filter(portal_message=portal_message)
    ]
    staff = (
        PortalStaffReply.objects.filter(portal_message=portal_message)
        .select_related("author")
        .prefetch_related("attachments")
    )
    for reply in staff:
        entries.append(
            ThreadEntry(
                True,
                reply.created_at,
                str(crypto.reveal(reply, "body", access=access) or ""),
                author=(reply.author.get_username() if reply.author and for_staff else ""),
                attachments=_attachment_infos(reply, access),
            )
        )
    return sorted(entries, key=lambda entry: entry.created_at)


def conversation_open(
    *, portal_message: PortalMessage, actor: Actor, request: HttpRequest | None = None
) -> StaffThread:
    """The whole thread for a staff member with ``luxmail.view_phi``.

    Writes ``phi.access`` (purpose ``portal.conversation_read``) and marks the patient's
    replies read by ``actor``. Raises ``PermissionError`` for others.
    """
    if not actor_has_perm(actor, READ_PERM):
        raise PermissionError("Reading conversations needs the PHI permission.")
    access = crypto.phi_access(
        actor=actor,
        purpose="portal.conversation_read",
        target=portal_message,
        request=request,
        details=_ids(portal_message),
    )
    subject = str(crypto.reveal(portal_message, "subject", access=access) or "")
    html = str(crypto.reveal(portal_message, "html", access=access) or "")
    entries = thread_entries(portal_message, access, for_staff=True)
    PortalReply.objects.filter(portal_message=portal_message, staff_read_at__isnull=True).update(
        staff_read_at=timezone.now(), staff_read_by=user_of(actor)
    )
    return StaffThread(subject=subject, html=sanitize_html(html), entries=entries)


def _checked_files(files: Sequence[tuple[str, bytes]]) -> list[tuple[CheckedFile, bool]]:
    if len(files) > MAX_FILES:
        raise AttachmentRejected(f"Attach at most {MAX_FILES} files to one reply.")
    checked = []
    for name, data in files:
        item = attachment_check(name=name, data=data)
        try:
            result = antivirus.scan(item.data)
        except antivirus.ScanRefused as refused:
            raise AttachmentRejected(str(refused)) from None
        checked.append((item, result.scanned))
    return checked


def conversation_reply_create(
    *,
    portal_message: PortalMessage,
    actor: Actor,
    body: str,
    files: Sequence[tuple[str, bytes]] = (),
    request: HttpRequest | None = None,
) -> PortalStaffReply:
    """Answer the patient in the portal, with up to five checked, scanned, encrypted files.

    The message must still be active (the patient could not read it otherwise). Audits
    ``portal.staff_reply`` (ids, length, file count and scan states) and, after commit,
    e-mails the patient a notice without PHI. Raises :class:`ConversationError`,
    :class:`~portal.attachments.AttachmentRejected` or ``PermissionError``.
    """
    if not may_answer(actor):
        raise PermissionError("Answering patients needs the PHI and send permissions.")
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise ConversationError("Write your answer before sending it.")
    if len(body) > MAX_REPLY_CHARS:
        raise ConversationError(
            f"The answer is too long ({len(body):,} characters); the limit is {MAX_REPLY_CHARS:,}."
        )
    checked = _checked_files(files)
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        try:
            _check_open(portal_message)
        except PortalUnavailable as closed:
            raise ConversationError(
                f"This secure message is {closed.state}; the patient can no longer open it, "
                "so an answer cannot be added."
            ) from None
        reply = PortalStaffReply(portal_message=portal_message, author=user_of(actor))
        crypto.seal(reply, "body", body)
        reply.save()
        for item, scanned in checked:
            attachment = PortalAttachment(
                staff_reply=reply,
                content_type=item.content_type,
                size=len(item.data),
                scan=AttachmentScan.CLEAN if scanned else AttachmentScan.UNSCANNED,
            )
            crypto.seal(attachment, "filename", item.name)
            crypto.seal(attachment, "content", item.data)
            attachment.save()
        if portal_message.done_at is not None:
            portal_message.done_at = None
            portal_message.done_by = None
            portal_message.save(update_fields=["done_at", "done_by"])
        audit.record(
            "portal.staff_reply",
            actor=actor,
            request=request,
            target=portal_message,
            details={
                **_ids(portal_message),
                "staff_reply_id": reply.pk,
                "characters": len(body),
                "files": len(checked),
                "unscanned_files": sum(1 for _, scanned in checked if not scanned),
            },
        )
        reply_id = reply.pk
        transaction.on_commit(lambda: jobs.NOTIFY_RECIPIENT.delay(reply_id))
    return reply


def recipient_notice_send(*, staff_reply_id: int) -> bool:
    """E-mail the patient that a new secure message waits (no PHI: sender name and link).

    Reads the recipient address under ``phi.access`` (purpose ``portal.reply_notice``,
    system actor). Audits ``portal.staff_reply_notified``. Returns whether the relay or
    MX accepted it; a retry sends a second, harmless notice.
    """
    reply = PortalStaffReply.objects.select_related("portal_message__sender").get(pk=staff_reply_id)
    portal_message = reply.portal_message
    access = crypto.phi_access(
        actor=None,
        purpose="portal.reply_notice",
        target=portal_message,
        details={**_ids(portal_message), "staff_reply_id": reply.pk},
    )
    recipient = str(crypto.reveal(portal_message, "recipient_email", access=access) or "")
    accepted = bool(recipient) and notices.send_staff_reply_notice(
        portal_message=portal_message, recipient=recipient, link=link_url(portal_message)
    )
    audit.record(
        "portal.staff_reply_notified",
        target=portal_message,
        details={**_ids(portal_message), "staff_reply_id": reply.pk, "accepted": accepted},
    )
    return accepted


def conversation_assign(
    *,
    portal_message: PortalMessage,
    assignee: User | None,
    actor: Actor,
    request: HttpRequest | None = None,
) -> PortalMessage:
    """Assign the conversation to a staff member who may answer (or to nobody).

    Audits ``portal.assign`` with the assignee's id. Raises :class:`ConversationError`.
    """
    if not may_answer(actor):
        raise PermissionError("Assigning conversations needs the PHI and send permissions.")
    if assignee is not None and (not assignee.is_active or not may_answer(assignee)):
        raise ConversationError("That person cannot answer patients (PHI and send permissions).")
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        portal_message.assigned_to = assignee
        portal_message.save(update_fields=["assigned_to"])
        audit.record(
            "portal.assign",
            actor=actor,
            request=request,
            target=portal_message,
            details={**_ids(portal_message), "assignee_id": assignee.pk if assignee else None},
        )
    return portal_message


def conversation_set_done(
    *, portal_message: PortalMessage, done: bool, actor: Actor, request: HttpRequest | None = None
) -> PortalMessage:
    """Mark the conversation done (or open it again). Idempotent; audits ``portal.done``
    or ``portal.reopen`` when the state changes. A new patient reply reopens it."""
    if not may_answer(actor):
        raise PermissionError("Closing conversations needs the PHI and send permissions.")
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        if (portal_message.done_at is not None) == done:
            return portal_message
        portal_message.done_at = timezone.now() if done else None
        portal_message.done_by = user_of(actor) if done else None
        portal_message.save(update_fields=["done_at", "done_by"])
        audit.record(
            "portal.done" if done else "portal.reopen",
            actor=actor,
            request=request,
            target=portal_message,
            details=_ids(portal_message),
        )
    return portal_message


def _attachment_file(attachment: PortalAttachment, access: crypto.Access) -> AttachmentFile:
    return AttachmentFile(
        name=str(crypto.reveal(attachment, "filename", access=access) or "attachment"),
        content_type=attachment.content_type,
        data=bytes(crypto.reveal(attachment, "content", access=access) or b""),
    )


def attachment_open_staff(
    *, attachment: PortalAttachment, actor: Actor, request: HttpRequest | None = None
) -> AttachmentFile:
    """An attachment for a staff member with ``luxmail.view_phi``; ``phi.access``
    (purpose ``portal.attachment_download``). Raises ``PermissionError``."""
    if not actor_has_perm(actor, READ_PERM):
        raise PermissionError("Downloading attachments needs the PHI permission.")
    portal_message = attachment.staff_reply.portal_message
    access = crypto.phi_access(
        actor=actor,
        purpose="portal.attachment_download",
        target=portal_message,
        request=request,
        details={**_ids(portal_message), "attachment_id": attachment.pk},
    )
    return _attachment_file(attachment, access)


def attachment_open_recipient(
    *,
    attachment: PortalAttachment,
    portal_message: PortalMessage,
    session: PortalSession,
    request: HttpRequest | None = None,
) -> AttachmentFile:
    """An attachment for the verified patient of its own message (else
    :class:`PortalUnavailable`); ``phi.access`` (purpose ``portal.attachment_download``)."""
    if (
        session.portal_message_id != portal_message.pk
        or attachment.staff_reply.portal_message_id != portal_message.pk
    ):
        raise PortalUnavailable("invalid")
    _check_open(portal_message)
    access = crypto.phi_access(
        actor=RECIPIENT,
        purpose="portal.attachment_download",
        target=portal_message,
        request=request,
        details={**_ids(portal_message), "attachment_id": attachment.pk},
    )
    return _attachment_file(attachment, access)


def recipient_mark_read(*, portal_message: PortalMessage) -> None:
    """Staff replies the patient has now seen (shown as "read" to staff)."""
    PortalStaffReply.objects.filter(
        portal_message=portal_message, recipient_read_at__isnull=True
    ).update(recipient_read_at=timezone.now())
