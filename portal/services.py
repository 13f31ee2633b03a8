"""Writes of the recipients' secure-message portal (issue 5, docs/security.md).

Lifecycle of a portal message:

1. **Create** (:func:`portal_message_for_delivery`, from the send pipeline when the
   channel is ``portal``): subject, HTML and text stored encrypted; expiry from the org
   setting; the notice e-mailed instead carries no PHI, only an opaque link.
2. **Code** (:func:`portal_code_send`): a 6-digit code e-mailed on demand to the
   address the message was sent to; valid 10 minutes, single use, stored as a keyed
   hash; one per minute and five per hour at most.
3. **Verify** (:func:`portal_verify`): the code (and the date of birth when the org
   requires it and one is on file). Five wrong answers lock the message.
4. **Read / reply** in a portal session scoped to that one message that idles out
   after 10 minutes (:func:`portal_session_resolve`, :func:`portal_message_open`,
   :func:`portal_reply_create`).
5. Staff **revoke** (:func:`portal_message_revoke`) or **unlock** it, and read replies
   (:func:`portal_reply_reveal`, PHI permission, audited).

Every verification, view, reply, failure and lockout writes an audit event whose
details hold ids and codes only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone

from luxmail import audit, crypto
from portal import reporting_hook
from portal.models import PortalCode, PortalMessage, PortalReply, PortalSession

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
# The audit actor of what a recipient does in the portal (they are not staff users).
RECIPIENT = "portal-recipient"
MAX_REPLY_CHARS = 10_000
MAX_REPLIES_PER_MESSAGE = 20


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def code_ttl() -> int:
    return _setting("LUXMAIL_PORTAL_CODE_SECONDS", 600)


def code_interval() -> int:
    return _setting("LUXMAIL_PORTAL_CODE_INTERVAL_SECONDS", 60)


def codes_per_hour() -> int:
    return _setting("LUXMAIL_PORTAL_CODES_PER_HOUR", 5)


def max_attempts() -> int:
    return _setting("LUXMAIL_PORTAL_MAX_ATTEMPTS", 5)


def idle_seconds() -> int:
    return _setting("LUXMAIL_PORTAL_IDLE_SECONDS", 600)


# --- errors ------------------------------------------------------------------------------


class PortalError(Exception):
    """Something the recipient can see; ``str()`` is a friendly sentence (no PHI)."""


class PortalUnavailable(PortalError):
    """The message is revoked, expired or locked (``state`` says which)."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class PortalRateLimited(PortalError):
    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"A code was sent recently. You can ask for a new one in {max(seconds, 1)} seconds."
        )
        self.seconds = seconds


class PortalNoCode(PortalError):
    def __init__(self) -> None:
        super().__init__(
            "There is no valid code for this message: it was used, it expired (codes last "
            "10 minutes) or none was requested. Ask for a new code."
        )


class PortalVerifyFailed(PortalError):
    def __init__(self, remaining: int, *, with_birth_date: bool) -> None:
        what = "The code or the date of birth" if with_birth_date else "The code"
        super().__init__(
            f"{what} is not correct. {remaining} attempt{'s' if remaining != 1 else ''} left "
            "before access to this message is locked."
        )
        self.remaining = remaining


class PortalDeliveryFailed(PortalError):
    def __init__(self) -> None:
        super().__init__("We could not send the code just now. Please try again in a few minutes.")


class PortalReplyInvalid(PortalError):
    pass


# --- tokens and hashes -----------------------------------------------------------------


@cache
def _key(purpose: str, secret: str) -> bytes:
    return hashlib.sha256(f"luxmail.portal|{purpose}|{secret}".encode()).digest()


def _mac(purpose: str, data: bytes) -> bytes:
    return hmac.new(_key(purpose, settings.SECRET_KEY), data, hashlib.sha256).digest()


def link_token(portal_message: PortalMessage) -> str:
    """The opaque token of the message's link (recomputable, so a deferred notice can be
    rebuilt): 256 bits derived from the row's UUID with a server key. No PHI."""
    raw = _mac("link", portal_message.uuid.bytes)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def link_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def link_url(portal_message: PortalMessage) -> str:
    return f"{settings.LUXMAIL_BASE_URL}/portal/{link_token(portal_message)}/"


def _code_hash(portal_message: PortalMessage, code: str) -> bytes:
    return _mac("code", portal_message.uuid.bytes + b"|" + code.encode())


def session_hash(key: str) -> bytes:
    return _mac("session", key.encode())


# --- creation (send pipeline) ------------------------------------------------------------


def portal_message_create(
    *,
    message_id: int | None,
    campaign_id: int | None,
    contact_id: int | None,
    sender_id: int | None,
    recipient_email: str,
    subject: str,
    html: str,
    text: str,
    expiry_days: int,
) -> PortalMessage:
    """Store one rendered message for the portal, encrypted; idempotent per message.

    A message that already has a portal copy (a retried notice) keeps it unchanged, so
    the link in every try opens the same content with the same expiry.
    """
    with transaction.atomic():
        if message_id is not None:
            existing = PortalMessage.objects.filter(message_id=message_id).first()
            if existing is not None:
                return existing
        portal_message = PortalMessage(
            message_id=message_id,
            campaign_id=campaign_id,
            contact_id=contact_id,
            sender_id=sender_id,
            expires_at=timezone.now() + dt.timedelta(days=max(expiry_days, 1)),
        )
        portal_message.link_hash = link_hash(link_token(portal_message))
        crypto.seal(portal_message, "recipient_email", recipient_email)
        crypto.seal(portal_message, "subject", subject)
        crypto.seal(portal_message, "html", html)
        crypto.seal(portal_message, "text", text)
        portal_message.save()
        audit.record(
            "portal.create",
            target=portal_message,
            details={"message_id": message_id, "campaign_id": campaign_id},
        )
    return portal_message


def notice_content(
    *,
    portal_message: PortalMessage,
    settings_row: Any,
    sender_name: str,
    unsubscribe_url: str = "",
) -> tuple[str, str, str]:
    """The notice that replaces the message: ``(subject, html, text)`` without PHI.

    Subject and text are the organization's (Admins set them in Settings); the rest is
    the sender identity's name, the link and the expiry date.
    """
    context = {
        "org_name": settings_row.name,
        "sender_name": sender_name or settings_row.name,
        "notice_text": settings_row.portal_notification_text,
        "link": link_url(portal_message),
        "expires_at": portal_message.expires_at,
        "unsubscribe_url": unsubscribe_url,
        "postal_address": settings_row.postal_address,
    }
    return (
        settings_row.portal_notification_subject or "You have a new secure message",
        render_to_string("portal/email/notice.html", context),
        render_to_string("portal/email/notice.txt", context),
    )


def portal_message_for_delivery(
    *,
    message_id: int,
    campaign_id: int,
    contact_id: int | None,
    recipient_email: str,
    subject: str,
    html: str,
    text: str,
    settings_row: Any = None,
    unsubscribe_url: str = "",
) -> tuple[str, str, str]:
    """Store the rendered message in the portal (once per message) and return the
    notice that the pipeline sends instead: ``(subject, html, text)``, no PHI."""
    from campaigns.models import Campaign
    from luxmail import org

    settings_row = settings_row or org.get_settings()
    campaign = Campaign.objects.select_related("sender").only("id", "sender").get(pk=campaign_id)
    sender = campaign.sender
    portal_message = portal_message_create(
        message_id=message_id,
        campaign_id=campaign_id,
        contact_id=contact_id,
        sender_id=sender.pk if sender is not None else None,
        recipient_email=recipient_email,
        subject=subject,
        html=html,
        text=text,
        expiry_days=settings_row.portal_expiry_days,
    )
    return notice_content(
        portal_message=portal_message,
        settings_row=settings_row,
        sender_name=sender.from_name if sender is not None else "",
        unsubscribe_url=unsubscribe_url,
    )


# --- state -----------------------------------------------------------------------------


def _check_open(portal_message: PortalMessage) -> None:
    from portal.selectors import portal_message_state

    state = portal_message_state(portal_message)
    if state != "active":
        raise PortalUnavailable(state)


def _ids(portal_message: PortalMessage) -> dict[str, Any]:
    return {
        "portal_message_id": portal_message.pk,
        "message_id": portal_message.message_id,
        "campaign_id": portal_message.campaign_id,
    }


# --- codes -----------------------------------------------------------------------------


def portal_code_send(*, portal_message: PortalMessage, request: HttpRequest | None = None) -> None:
    """E-mail a new 6-digit code to the address the message was sent to.

    Earlier unused codes stop working. At most one code per
    ``LUXMAIL_PORTAL_CODE_INTERVAL_SECONDS`` (60) and ``LUXMAIL_PORTAL_CODES_PER_HOUR``
    (5) per message. Audits ``portal.code_sent`` (or ``portal.code_failed`` when the
    e-mail could not be handed over, in which case the code is discarded). Raises
    :class:`PortalUnavailable`, :class:`PortalRateLimited`, :class:`PortalDeliveryFailed`.
    """
    now = timezone.now()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        _check_open(portal_message)
        recent = list(
            PortalCode.objects.filter(
                portal_message=portal_message, created_at__gte=now - dt.timedelta(hours=1)
            ).order_by("-created_at")
        )
        if recent:
            wait = code_interval() - int((now - recent[0].created_at).total_seconds())
            if wait > 0:
                raise PortalRateLimited(wait)
        if len(recent) >= codes_per_hour():
            oldest = recent[codes_per_hour() - 1].created_at
            raise PortalRateLimited(int((oldest + dt.timedelta(hours=1) - now).total_seconds()))
        PortalCode.objects.filter(
            portal_message=portal_message, used_at__isnull=True, superseded_at__isnull=True
        ).update(superseded_at=now)
        issued = PortalCode.objects.create(
            portal_message=portal_message,
            code_hash=_code_hash(portal_message, code),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=code_ttl()),
        )
        access = crypto.phi_access(
            actor=None,
            purpose="portal.code",
            target=portal_message,
            request=request,
            details=_ids(portal_message),
        )
        recipient = str(crypto.reveal(portal_message, "recipient_email", access=access))
    from portal import notices

    if not notices.send_code(portal_message=portal_message, recipient=recipient, code=code):
        PortalCode.objects.filter(pk=issued.pk).delete()
        audit.record(
            "portal.code_failed",
            actor=RECIPIENT,
            target=portal_message,
            request=request,
            details=_ids(portal_message),
        )
        raise PortalDeliveryFailed()
    audit.record(
        "portal.code_sent",
        actor=RECIPIENT,
        target=portal_message,
        request=request,
        details=_ids(portal_message),
    )


def birth_date_required(portal_message: PortalMessage) -> bool:
    """Whether verification asks for the date of birth (org setting, and one on file)."""
    from contacts.models import ContactProfile
    from luxmail import org

    if not org.get_settings().portal_require_dob or portal_message.contact_id is None:
        return False
    return ContactProfile.objects.filter(
        contact_id=portal_message.contact_id, birth_date__isnull=False
    ).exists()


def _birth_date_matches(
    portal_message: PortalMessage, given: dt.date | None, request: HttpRequest | None
) -> bool:
    from contacts.models import ContactProfile

    if given is None or portal_message.contact_id is None:
        return False
    profile = (
        ContactProfile.objects.filter(contact_id=portal_message.contact_id)
        .only("contact_id", "uuid", "birth_date")
        .first()
    )
    if profile is None:
        return False
    access = crypto.phi_access(
        actor=RECIPIENT,
        purpose="portal.verify_birth_date",
        target=portal_message,
        request=request,
        details=_ids(portal_message),
    )
    return bool(crypto.reveal(profile, "birth_date", access=access) == given)


@dataclass(frozen=True)
class Verified:
    session_key: str
    session: PortalSession


def portal_verify(
    *,
    portal_message: PortalMessage,
    code: str,
    birth_date: dt.date | None = None,
    request: HttpRequest | None = None,
) -> Verified:
    """Check the code (and date of birth when required) and open a portal session.

    The code is single use. A wrong answer counts toward ``LUXMAIL_PORTAL_MAX_ATTEMPTS``
    (5); reaching it locks the message until staff unlock it. Audits
    ``portal.verified``, ``portal.verify_failed`` (reason ``code``, ``birth_date`` or
    ``no_code``) and ``portal.locked``. Raises :class:`PortalUnavailable`,
    :class:`PortalNoCode`, :class:`PortalVerifyFailed`.
    """
    needs_birth_date = birth_date_required(portal_message)
    now = timezone.now()
    failure: PortalError | None = None
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        _check_open(portal_message)
        live = (
            PortalCode.objects.filter(
                portal_message=portal_message,
                used_at__isnull=True,
                superseded_at__isnull=True,
                expires_at__gt=now,
            )
            .order_by("-created_at")
            .first()
        )
        if live is None:
            audit.record(
                "portal.verify_failed",
                actor=RECIPIENT,
                target=portal_message,
                request=request,
                details={**_ids(portal_message), "reason": "no_code"},
            )
            failure = PortalNoCode()
        else:
            given = "".join(code.split())
            code_ok = hmac.compare_digest(bytes(live.code_hash), _code_hash(portal_message, given))
            date_ok = (
                _birth_date_matches(portal_message, birth_date, request)
                if code_ok and needs_birth_date
                else True
            )
            if code_ok and date_ok:
                live.used_at = now
                live.save(update_fields=["used_at"])
                portal_message.failed_attempts = 0
                portal_message.save(update_fields=["failed_attempts"])
                key = secrets.token_urlsafe(32)
                session = PortalSession.objects.create(
                    portal_message=portal_message,
                    key_hash=session_hash(key),
                    created_at=now,
                    last_seen_at=now,
                )
                audit.record(
                    "portal.verified",
                    actor=RECIPIENT,
                    target=portal_message,
                    request=request,
                    details={**_ids(portal_message), "birth_date_checked": needs_birth_date},
                )
                return Verified(session_key=key, session=session)
            portal_message.failed_attempts += 1
            attempts = portal_message.failed_attempts
            audit.record(
                "portal.verify_failed",
                actor=RECIPIENT,
                target=portal_message,
                request=request,
                details={
                    **_ids(portal_message),
                    "reason": "code" if not code_ok else "birth_date",
                    "attempts": attempts,
                },
            )
            if attempts >= max_attempts():
                portal_message.locked_at = now
                live.superseded_at = now
                live.save(update_fields=["superseded_at"])
                PortalSession.objects.filter(
                    portal_message=portal_message, ended_at__isnull=True
                ).update(ended_at=now)
                audit.record(
                    "portal.locked",
                    actor=RECIPIENT,
                    target=portal_message,
                    request=request,
                    details={**_ids(portal_message), "attempts": attempts},
                )
                failure = PortalUnavailable("locked")
            else:
                failure = PortalVerifyFailed(
                    max_attempts() - attempts, with_birth_date=needs_birth_date
                )
            portal_message.save(update_fields=["failed_attempts", "locked_at"])
    # Raised after the commit: the failed attempt (and a lockout) must be recorded.
    assert failure is not None
    raise failure


# --- sessions --------------------------------------------------------------------------


def portal_session_resolve(
    *, portal_message: PortalMessage, session_key: str | None, request: HttpRequest | None = None
) -> PortalSession | None:
    """The live session of this message for ``session_key``, touched; or None.

    A session of another message never matches (the key is looked up together with
    the message). One idle longer than ``LUXMAIL_PORTAL_IDLE_SECONDS`` is ended
    (audited ``portal.session_idle``). A message no longer active has no sessions.
    """
    if not session_key:
        return None
    now = timezone.now()
    with transaction.atomic():
        session = (
            PortalSession.objects.select_for_update()
            .filter(
                portal_message=portal_message,
                key_hash=session_hash(session_key),
                ended_at__isnull=True,
            )
            .first()
        )
        if session is None:
            return None
        from portal.selectors import portal_message_state

        if portal_message_state(portal_message) != "active":
            session.ended_at = now
            session.save(update_fields=["ended_at"])
            return None
        if (now - session.last_seen_at).total_seconds() > idle_seconds():
            session.ended_at = now
            session.save(update_fields=["ended_at"])
            audit.record(
                "portal.session_idle",
                actor=RECIPIENT,
                target=portal_message,
                request=request,
                details=_ids(portal_message),
            )
            return None
        session.last_seen_at = now
        session.save(update_fields=["last_seen_at"])
    return session


def portal_session_end(*, session: PortalSession, request: HttpRequest | None = None) -> None:
    """Sign the recipient out of the message. Audits ``portal.signed_out``."""
    with transaction.atomic():
        updated = PortalSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
            ended_at=timezone.now()
        )
        if updated:
            audit.record(
                "portal.signed_out",
                actor=RECIPIENT,
                target=session.portal_message,
                request=request,
                details=_ids(session.portal_message),
            )


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


def portal_message_open(
    *, portal_message: PortalMessage, session: PortalSession, request: HttpRequest | None = None
) -> PortalContent:
    """Decrypt the message for its verified recipient and count the read.

    One ``phi.access`` (purpose ``portal.read``) and one ``portal.view`` event per
    view. The first read records a verified human open for reporting. Raises
    :class:`PortalUnavailable` when the message stopped being active.
    """
    from portal.sanitize import sanitize_html

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
        audit.record(
            "portal.reply",
            actor=RECIPIENT,
            target=portal_message,
            request=request,
            details={**_ids(portal_message), "reply_id": reply.pk, "characters": len(body)},
        )

        reporting_hook.emit(
            "portal_reply", portal_message=portal_message, occurred_at=reply.created_at
        )
        reply_id = reply.pk
        transaction.on_commit(lambda: _enqueue_reply_notice(reply_id))
    return reply


def _enqueue_reply_notice(reply_id: int) -> None:
    from portal import tasks

    tasks.notify_reply.delay(reply_id)


def portal_reply_notify(*, reply_id: int) -> bool:
    """E-mail the sender identity's reply-to (or From) that a reply waits in LuxMail.

    Idempotent enough for a retried task (a second notice is harmless and has no PHI).
    Returns whether the relay or MX accepted it. Audits ``portal.reply_notified``.
    """
    from portal import notices

    reply = PortalReply.objects.select_related("portal_message__sender").get(pk=reply_id)
    accepted = notices.send_reply_notice(reply=reply)
    audit.record(
        "portal.reply_notified",
        target=reply.portal_message,
        details={**_ids(reply.portal_message), "reply_id": reply.pk, "accepted": accepted},
    )
    return accepted


# --- staff -----------------------------------------------------------------------------


def portal_message_revoke(
    *, portal_message: PortalMessage, actor: Any, request: HttpRequest | None = None
) -> PortalMessage:
    """Revoke a portal message: its link shows "withdrawn", open sessions end.

    Idempotent. Audits ``portal.revoke``.
    """
    now = timezone.now()
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        if portal_message.revoked_at is not None:
            return portal_message
        portal_message.revoked_at = now
        portal_message.revoked_by = actor if getattr(actor, "pk", None) else None
        portal_message.save(update_fields=["revoked_at", "revoked_by"])
        PortalSession.objects.filter(portal_message=portal_message, ended_at__isnull=True).update(
            ended_at=now
        )
        audit.record(
            "portal.revoke",
            actor=actor,
            request=request,
            target=portal_message,
            details=_ids(portal_message),
        )
    return portal_message


def portal_message_unlock(
    *, portal_message: PortalMessage, actor: Any, request: HttpRequest | None = None
) -> PortalMessage:
    """Lift a lockout after staff confirmed the recipient's identity another way.

    Resets the failed-attempt count and discards earlier codes (the recipient asks for
    a new one). Audits ``portal.unlock``.
    """
    with transaction.atomic():
        portal_message = PortalMessage.objects.select_for_update().get(pk=portal_message.pk)
        if portal_message.locked_at is None:
            return portal_message
        portal_message.locked_at = None
        portal_message.failed_attempts = 0
        portal_message.save(update_fields=["locked_at", "failed_attempts"])
        # Old codes are void; dropping them also restarts the hourly code budget.
        PortalCode.objects.filter(portal_message=portal_message).delete()
        audit.record(
            "portal.unlock",
            actor=actor,
            request=request,
            target=portal_message,
            details=_ids(portal_message),
        )
    return portal_message


def portal_reply_reveal(
    *, reply: PortalReply, actor: Any, request: HttpRequest | None = None
) -> str:
    """The reply's text for a staff member holding ``luxmail.view_phi``.

    Writes ``phi.access`` (purpose ``portal.reply_read``) and marks the reply read.
    Raises ``PermissionError`` for others.
    """
    if not actor.has_perm("luxmail.view_phi"):
        raise PermissionError("Reading replies needs the PHI permission.")
    access = crypto.phi_access(
        actor=actor,
        purpose="portal.reply_read",
        target=reply.portal_message,
        request=request,
        details={**_ids(reply.portal_message), "reply_id": reply.pk},
    )
    body = str(crypto.reveal(reply, "body", access=access))
    if reply.staff_read_at is None:
        PortalReply.objects.filter(pk=reply.pk, staff_read_at__isnull=True).update(
            staff_read_at=timezone.now(), staff_read_by=actor
        )
    return body


def portal_message_reveal(
    *, portal_message: PortalMessage, actor: Any, request: HttpRequest | None = None
) -> tuple[str, str]:
    """Subject and sanitized HTML of a portal message, for staff with ``view_phi``.

    Writes ``phi.access`` (purpose ``portal.staff_view``). Raises ``PermissionError``.
    """
    from portal.sanitize import sanitize_html

    if not actor.has_perm("luxmail.view_phi"):
        raise PermissionError("Reading portal messages needs the PHI permission.")
    access = crypto.phi_access(
        actor=actor,
        purpose="portal.staff_view",
        target=portal_message,
        request=request,
        details=_ids(portal_message),
    )
    subject = str(crypto.reveal(portal_message, "subject", access=access) or "")
    html = str(crypto.reveal(portal_message, "html", access=access) or "")
    return subject, sanitize_html(html)
