"""Staff management for Admins (issue 17 §6): invitations, roles, deactivation, MFA
reset and sessions. Every write is audited; nothing here touches PHI.

* **Invitations**: the link carries ``signing.dumps({"i": id, "s": secret})`` (salted,
  timestamped, so it also expires by ``max_age``); only the secret's SHA-256 is stored.
  A link works once (``accepted_at``), until ``expires_at`` and not after revocation.
  The mail goes through Django's system-mail path (``django.core.mail`` →
  ``luxmail.mail.RelayEmailBackend``), like every other notice LuxMail sends itself.
  The invitee sets a username and password here, then signs in and enrols a second
  factor through the ordinary sign-in flow (``luxmail/accounts``).
* **Sessions**: sign-in records which database session belongs to whom
  (``StaffSession``, written by ``luxmail.signals``); ending one deletes its row in
  ``django_session`` (``SESSION_ENGINE`` is the database backend), which signs that
  browser out at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from luxmail import audit, conf, org, roles
from luxmail.actors import Actor
from luxmail.models import Invitation, StaffSession, User

logger = logging.getLogger(__name__)

_SALT = "luxmail.staff.invitation"
TOKEN_MAX_LENGTH = 400
REASON_MIN = 10
REASON_MAX = 500
# Roles whose members are Django staff (the admin site), as make_user does in tests.
_STAFF_ROLES = {roles.ADMIN, roles.COMPLIANCE_OFFICER}


class StaffError(Exception):
    """A staff-management step that cannot be done; the message is safe to show."""


class InvitationInvalid(StaffError):
    """The link is unknown, tampered with, used, revoked or expired (one message for all)."""

    def __init__(self) -> None:
        super().__init__(
            "This invitation link is not valid: it may have been used already, revoked or "
            "have expired. Ask an Admin for a new one."
        )


def role_choices() -> list[str]:
    return list(roles.ROLE_PERMISSIONS)


def _clean_roles(names: list[str]) -> list[str]:
    unknown = sorted(set(names) - set(role_choices()))
    if unknown:
        raise StaffError(f"Unknown role: {', '.join(unknown)}.")
    return sorted(set(names))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- invitations ---------------------------------------------------------------------------


def invitation_link(invitation: Invitation, secret: str) -> str:
    token = signing.dumps({"i": invitation.pk, "s": secret}, salt=_SALT, compress=False)
    return conf.base_url() + reverse("staff:invitation_accept", args=[token])


def invitation_create(
    *,
    email: str,
    role_names: list[str],
    actor: Actor,
    request: Any = None,
    send: bool = True,
) -> tuple[Invitation, str]:
    """Invite ``email`` in ``role_names`` and mail the link; returns (invitation, link).

    Earlier open invitations of the same address are revoked (one link at a time).
    Raises ``StaffError`` for an unknown role or an address an active user already has,
    and when the relay refuses the mail (the invitation stays; invite again once the
    relay works). Audited as ``staff.invite`` (invitation id, roles; the address is a
    staff address, not PHI, and is kept on the invitation, not in the audit details).
    ``send=False`` (demo data) skips the mail.
    """
    email = email.strip().lower()
    chosen = _clean_roles(role_names)
    if User.objects.filter(email__iexact=email, is_active=True).exists():
        raise StaffError("An active user already has this e-mail address.")
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        Invitation.objects.filter(
            email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            email=email,
            roles=chosen,
            secret_hash=_hash(secret),
            created_by=actor if isinstance(actor, User) else None,
            expires_at=now + timedelta(hours=conf.invitation_hours()),
        )
        audit.record(
            "staff.invite",
            actor=actor,
            request=request,
            target=invitation,
            details={"invitation": invitation.pk, "roles": chosen},
        )
        link = invitation_link(invitation, secret)
    if send:
        try:
            _invitation_mail(invitation, link)
        except OSError as error:  # smtplib's errors are OSErrors
            logger.error("invitation mail failed: %s", type(error).__name__)
            raise StaffError(
                "The invitation was saved, but the mail could not be sent (mail relay "
                "error). Fix the relay, then send the invitation again."
            ) from None
    return invitation, link


def _invitation_mail(invitation: Invitation, link: str) -> None:
    org_name = org.get_settings().name
    hours = conf.invitation_hours()
    send_mail(
        subject=f"[LuxMail] You are invited to {org_name}",
        message=(
            f"You have been invited to LuxMail at {org_name} as "
            f"{', '.join(invitation.roles) or 'staff'}.\n\n"
            f"Open this link within {hours} hours to choose your username and password; "
            "it works once. You will then set up a second factor (an authenticator app).\n\n"
            f"{link}\n\nIf you did not expect this, ignore this mail.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def invitation_from_token(token: str, *, for_update: bool = False) -> Invitation:
    """The open invitation the link names, or ``InvitationInvalid`` (bounded, constant
    message: a stranger learns nothing about which check failed)."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise InvitationInvalid()
    try:
        value = signing.loads(token, salt=_SALT, max_age=conf.invitation_hours() * 3600)
    except signing.BadSignature:
        raise InvitationInvalid() from None
    if not isinstance(value, dict):
        raise InvitationInvalid()
    pk, secret = value.get("i"), value.get("s")
    if not isinstance(pk, int) or not isinstance(secret, str):
        raise InvitationInvalid()
    rows = Invitation.objects.select_for_update() if for_update else Invitation.objects
    invitation = rows.filter(pk=pk).first()
    if (
        invitation is None
        or not hmac.compare_digest(invitation.secret_hash, _hash(secret))
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= timezone.now()
    ):
        raise InvitationInvalid()
    return invitation


def invitation_accept(
    *,
    token: str,
    username: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    request: Any = None,
) -> User:
    """Create the invited user with the invitation's roles; the link is used up.

    Raises ``InvitationInvalid`` or ``StaffError`` (username taken, weak password: the
    validators' messages). Audited as ``staff.invite_accept``. The new user has no
    second factor yet: the first sign-in goes to enrolment.
    """
    username = username.strip()
    with transaction.atomic():
        invitation = invitation_from_token(token, for_update=True)
        if User.objects.filter(username__iexact=username).exists():
            raise StaffError("This username is taken: choose another.")
        candidate = User(
            username=username,
            email=invitation.email,
            first_name=first_name[:150],
            last_name=last_name[:150],
        )
        try:
            validate_password(password, user=candidate)
        except ValidationError as error:
            raise StaffError(" ".join(error.messages)) from None
        candidate.is_staff = bool(_STAFF_ROLES & set(invitation.roles))
        candidate.set_password(password)
        candidate.save()
        candidate.groups.set(Group.objects.filter(name__in=invitation.roles))
        invitation.accepted_at = timezone.now()
        invitation.accepted_user = candidate
        invitation.save(update_fields=["accepted_at", "accepted_user"])
        audit.record(
            "staff.invite_accept",
            actor=candidate,
            request=request,
            target=candidate,
            details={"invitation": invitation.pk, "roles": invitation.roles},
        )
    return candidate


def invitation_revoke(*, invitation: Invitation, actor: Actor, request: Any = None) -> bool:
    with transaction.atomic():
        updated = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if updated:
            audit.record(
                "staff.invite_revoke",
                actor=actor,
                request=request,
                target=invitation,
                details={"invitation": invitation.pk},
            )
    return bool(updated)


def invitations_open() -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("created_by")


# --- roles, deactivation, MFA reset -------------------------------------------------------


def staff_list() -> QuerySet[User]:
    return User.objects.order_by("-is_active", "username").prefetch_related(
        Prefetch("groups", queryset=Group.objects.order_by("name"))
    )


def staff_roles_set(
    *, user: User, role_names: list[str], actor: Actor, request: Any = None
) -> None:
    """Give ``user`` exactly ``role_names``. Audited as ``staff.roles`` (before, after).

    An Admin cannot take the Admin role from themselves (the last one would lock
    everybody out of staff management).
    """
    chosen = _clean_roles(role_names)
    before = roles.role_names(user)
    if before == chosen:
        return
    if isinstance(actor, User) and actor.pk == user.pk and roles.ADMIN not in chosen:
        raise StaffError("You cannot remove your own Admin role: ask another Admin.")
    with transaction.atomic():
        user.groups.set(Group.objects.filter(name__in=chosen))
        is_staff = bool(_STAFF_ROLES & set(chosen))
        if user.is_staff != is_staff and not user.is_superuser:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff"])
        audit.record(
            "staff.roles",
            actor=actor,
            request=request,
            target=user,
            details={"before": before, "after": chosen},
        )


def _reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise StaffError(f"Give a reason of {REASON_MIN} to {REASON_MAX} characters.")
    return reason


def staff_set_active(
    *, user: User, active: bool, reason: str, actor: Actor, request: Any = None
) -> None:
    """Deactivate (and sign out everywhere) or reactivate ``user``; audited with the reason
    (``staff.deactivate`` / ``staff.reactivate``). Nobody deactivates themselves."""
    reason = _reason(reason)
    if isinstance(actor, User) and actor.pk == user.pk and not active:
        raise StaffError("You cannot deactivate your own account.")
    if user.is_active == active:
        return
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        ended = 0 if active else _sessions_delete(user)
        audit.record(
            "staff.reactivate" if active else "staff.deactivate",
            actor=actor,
            request=request,
            target=user,
            details={"reason": reason, "sessions_ended": ended},
        )


def mfa_reset(*, user: User, reason: str, actor: Actor, request: Any = None) -> dict[str, int]:
    """Remove every second factor of ``user`` (authenticator apps, backup codes, passkeys)
    and end their sessions: the next sign-in goes to enrolment.

    ``reason`` is required (staff-written, no PHI). Audited as ``mfa.reset`` with the
    reason and what was removed. An Admin resets their own factors on the security page.
    """
    reason = _reason(reason)
    if isinstance(actor, User) and actor.pk == user.pk:
        raise StaffError("Manage your own factors on the Sign-in security page.")
    with transaction.atomic():
        removed = {
            "totp": TOTPDevice.objects.filter(user=user).delete()[0],
            "backup_codes": StaticDevice.objects.filter(user=user).count(),
            "passkey": WebAuthnCredential.objects.filter(user=user).delete()[0],
        }
        StaticDevice.objects.filter(user=user).delete()
        removed["sessions_ended"] = _sessions_delete(user)
        audit.record(
            "mfa.reset",
            actor=actor,
            request=request,
            target=user,
            details={"reason": reason, **removed},
        )
    return removed


# --- sessions ----------------------------------------------------------------------------


def staff_session_record(*, user: Any, request: Any) -> None:
    """Remember which session a sign-in created (called by the ``user_logged_in`` receiver)."""
    session = getattr(request, "session", None)
    if session is None:
        return
    if session.session_key is None:
        session.save()
    meta = getattr(request, "META", {})
    StaffSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={
            "user": user,
            "ip": str(meta.get("REMOTE_ADDR", ""))[:45],
            "user_agent": str(meta.get("HTTP_USER_AGENT", ""))[:300],
        },
    )


@dataclass(frozen=True)
class SessionRow:
    key_hint: str  # the last 6 characters, enough to tell sessions apart on the page
    session_id: int
    created_at: datetime
    expires_at: datetime
    ip: str
    user_agent: str
    current: bool


def staff_sessions(user: Any, *, current_key: str | None = None) -> list[SessionRow]:
    """The user's live sessions, newest first; stale mapping rows are dropped."""
    now = timezone.now()
    rows = list(StaffSession.objects.filter(user=user))
    live = dict(
        Session.objects.filter(
            session_key__in=[r.session_key for r in rows], expire_date__gt=now
        ).values_list("session_key", "expire_date")
    )
    stale = [r.pk for r in rows if r.session_key not in live]
    if stale:
        StaffSession.objects.filter(pk__in=stale).delete()
    return [
        SessionRow(
            key_hint=r.session_key[-6:],
            session_id=r.pk,
            created_at=r.created_at,
            expires_at=live[r.session_key],
            ip=r.ip,
            user_agent=r.user_agent,
            current=r.session_key == current_key,
        )
        for r in rows
        if r.session_key in live
    ]


def _sessions_delete(user: Any, *, only_id: int | None = None) -> int:
    rows = StaffSession.objects.filter(user=user)
    if only_id is not None:
        rows = rows.filter(pk=only_id)
    keys = list(rows.values_list("session_key", flat=True))
    ended = Session.objects.filter(session_key__in=keys).delete()[0]
    rows.delete()
    return int(ended)


def staff_session_end(
    *, user: Any, session_id: int | None, actor: Actor, request: Any = None
) -> int:
    """End one of ``user``'s sessions (``session_id``) or all (None). Audited as
    ``staff.session_end``; returns the number of sessions ended."""
    with transaction.atomic():
        ended = _sessions_delete(user, only_id=session_id)
        audit.record(
            "staff.session_end",
            actor=actor,
            request=request,
            target=user,
            details={"sessions_ended": ended, "all": session_id is None},
        )
    return ended
