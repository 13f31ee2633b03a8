"""One-time codes: sending them and verifying the recipient (code plus birth date when required)."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts.models import ContactProfile
from luxmail import audit, crypto, org
from portal import notices
from portal.models import PortalCode, PortalMessage, PortalSession
from portal.services.config import (
    CODE_DIGITS,
    RECIPIENT,
    PortalDeliveryFailed,
    PortalError,
    PortalNoCode,
    PortalRateLimited,
    PortalUnavailable,
    PortalVerifyFailed,
    code_interval,
    code_ttl,
    codes_per_hour,
    max_attempts,
)
from portal.services.messages import _check_open, _ids
from portal.services.tokens import _code_hash, session_hash

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

    if not org.get_settings().portal_require_dob or portal_message.contact_id is None:
        return False
    return ContactProfile.objects.filter(
        contact_id=portal_message.contact_id, birth_date__isnull=False
    ).exists()


def _birth_date_matches(
    portal_message: PortalMessage, given: dt.date | None, request: HttpRequest | None
) -> bool:

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
