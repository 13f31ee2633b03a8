"""Break-glass: time-limited PHI access a user asks for in an emergency (issue 17 §6).

A user without PHI access writes a justification and picks a duration (at most
``LUXMAIL_BREAK_GLASS_MAX_MINUTES``); the grant starts at once — an emergency does not
wait for an approver — and every Admin is told at once: in the app (the open-grants
banner, ``grants_unacknowledged``) and by e-mail through the system-mail path
(``django.core.mail`` → ``luxmail.mail.RelayEmailBackend``). While it is open:

* :class:`BreakGlassPermissionBackend` gives the user ``luxmail.view_phi`` (never
  ``export_phi``: a bulk export is not an emergency);
* ``luxmail.audit.record`` adds ``"break_glass": <grant id>`` to the details of every
  PHI event the user causes (:func:`active_grant_id`), so the audit trail flags them.

A grant ends at ``expires_at`` by itself (the backend checks the time on each request);
the beat task ``luxmail.break_glass_expire`` then audits ``breakglass.expire``. An
Admin may revoke it earlier (``breakglass.revoke``). Grants are never deleted.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from luxmail import audit, conf, notifications
from luxmail.actors import Actor
from luxmail.models import BreakGlassGrant, User

logger = logging.getLogger(__name__)

PHI_PERMISSION = "luxmail.view_phi"
JUSTIFICATION_MIN = 20
JUSTIFICATION_MAX = 1000
# Per-request cache on the user object: has_perm runs several times per page.
_CACHE_ATTR = "_luxmail_break_glass"


class BreakGlassError(Exception):
    """A request or revocation that cannot be done; the message is safe to show."""


def _open(now: datetime | None = None) -> QuerySet[BreakGlassGrant]:
    now = now or timezone.now()
    return BreakGlassGrant.objects.filter(revoked_at__isnull=True, expires_at__gt=now)


def active_grant_id(user_id: int | None) -> int | None:
    """The id of ``user_id``'s open grant, or None (one indexed query).

    The audit log asks the same question for every PHI event (``audit.record``).
    """
    return audit.break_glass_grant_id(user_id) if user_id else None


def open_until(user_id: int) -> datetime | None:
    """When ``user_id``'s open grant ends, or None."""
    return (
        _open()
        .filter(user_id=user_id)
        .order_by("-expires_at")
        .values_list("expires_at", flat=True)
        .first()
    )


def open_grants() -> QuerySet[BreakGlassGrant]:
    """Every open grant, soonest to end first."""
    return _open().select_related("user", "acknowledged_by").order_by("expires_at")


def grants_unacknowledged() -> QuerySet[BreakGlassGrant]:
    """Open grants no Admin has acknowledged yet: the in-app notice for Admins."""
    return open_grants().filter(acknowledged_at__isnull=True)


def grants_recent(*, limit: int = 50) -> QuerySet[BreakGlassGrant]:
    return BreakGlassGrant.objects.select_related("user", "revoked_by", "acknowledged_by")[:limit]


def grants_of(user: Any, *, limit: int = 20) -> QuerySet[BreakGlassGrant]:
    return BreakGlassGrant.objects.filter(user=user)[:limit]


def has_phi_by_role(user: Any) -> bool:
    """True when a role (group) or superuser status gives ``user`` PHI access anyway."""
    if user.is_superuser:
        return True
    return user.groups.filter(
        permissions__codename="view_phi", permissions__content_type__app_label="luxmail"
    ).exists()


def _admin_emails() -> list[str]:
    admins = User.objects.filter(is_active=True, groups__name="Admin").exclude(email="")
    return sorted(set(admins.values_list("email", flat=True)))


def _mail_admins(grant: BreakGlassGrant) -> None:
    recipients = _admin_emails()
    if not recipients:
        return
    link = f"{conf.base_url()}/staff/break-glass/"
    # The justification is staff-written and must not hold PHI; it is still left out
    # of the mail, which leaves the organization: the page shows it.
    send_mail(
        subject=f"[LuxMail] Break-glass PHI access opened by {grant.user.get_username()}",
        message=(
            f"{grant.user.get_username()} opened emergency (break-glass) access to PHI "
            f"until {timezone.localtime(grant.expires_at):%Y-%m-%d %H:%M %Z}.\n\n"
            "Every PHI access in this window is flagged in the audit trail. Review the "
            "justification and revoke the access if it is not warranted:\n\n"
            f"{link}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )


def break_glass_request(
    *, user: Any, justification: str, minutes: int, request: Any = None
) -> BreakGlassGrant:
    """Open a break-glass grant for ``user`` now and tell the Admins.

    Admins see it at once: an in-app notification (``luxmail/notifications.py``) and the
    banner, then an e-mail. Raises ``BreakGlassError`` when the user has PHI access by
    role already, has an open grant, the justification is too short or the duration out
    of range. Audited as ``breakglass.request`` (grant id, minutes; the justification
    stays on the grant). The Admin e-mail is sent after commit; a relay failure is
    logged, never raised.
    """
    justification = " ".join(justification.split())
    if len(justification) < JUSTIFICATION_MIN:
        raise BreakGlassError(
            f"Write at least {JUSTIFICATION_MIN} characters: why you need PHI access now."
        )
    justification = justification[:JUSTIFICATION_MAX]
    longest = conf.break_glass_max_minutes()
    if not 5 <= minutes <= longest:
        raise BreakGlassError(f"Choose between 5 and {longest} minutes.")
    if not user.is_active:
        raise BreakGlassError("This account is deactivated.")
    if has_phi_by_role(user):
        raise BreakGlassError("Your role already gives you PHI access.")
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        if active_grant_id(user.pk) is not None:
            raise BreakGlassError("You already have open break-glass access.")
        grant = BreakGlassGrant.objects.create(
            user=user,
            justification=justification,
            expires_at=timezone.now() + timedelta(minutes=minutes),
        )
        audit.record(
            "breakglass.request",
            actor=user,
            request=request,
            target=grant,
            details={"grant": grant.pk, "minutes": minutes},
        )
        notifications.notify(
            kind="break_glass",
            title=f"{user.get_username()} opened break-glass PHI access for {minutes} minutes.",
            link=f"/staff/{user.pk}/",
        )
        transaction.on_commit(lambda: _notify_after_commit(grant.pk))
    return grant


def _notify_after_commit(grant_id: int) -> None:
    grant = BreakGlassGrant.objects.select_related("user").get(pk=grant_id)
    try:
        _mail_admins(grant)
    except OSError as error:
        # The in-app notice still shows; operators see the relay problem in the log.
        logger.error("break-glass e-mail to Admins failed: %s", type(error).__name__)


def break_glass_acknowledge(*, grant: BreakGlassGrant, actor: Actor, request: Any = None) -> None:
    """An Admin has seen the grant (it leaves the notice banner). Audited; idempotent."""
    with transaction.atomic():
        updated = BreakGlassGrant.objects.filter(pk=grant.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(),
            acknowledged_by=actor if isinstance(actor, User) else None,
        )
        if updated:
            audit.record(
                "breakglass.acknowledge",
                actor=actor,
                request=request,
                target=grant,
                details={"grant": grant.pk},
            )


def break_glass_revoke(*, grant: BreakGlassGrant, actor: Actor, request: Any = None) -> bool:
    """End an open grant now. Returns False when it had already ended. Audited."""
    with transaction.atomic():
        updated = (
            _open()
            .filter(pk=grant.pk)
            .update(
                revoked_at=timezone.now(), revoked_by=actor if isinstance(actor, User) else None
            )
        )
        if updated:
            audit.record(
                "breakglass.revoke",
                actor=actor,
                request=request,
                target=grant,
                details={"grant": grant.pk, "user_id": grant.user_id},
            )
    return bool(updated)


def break_glass_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Audit ``breakglass.expire`` once for each grant that ran out (bounded by ``limit``).

    Access already ended at ``expires_at``; this leaves the record of it. Idempotent.
    """
    now = now or timezone.now()
    done = 0
    ids = list(
        BreakGlassGrant.objects.filter(
            revoked_at__isnull=True, expires_at__lte=now, expiry_recorded_at__isnull=True
        ).values_list("pk", flat=True)[:limit]
    )
    for grant_id in ids:
        with transaction.atomic():
            grant = BreakGlassGrant.objects.filter(pk=grant_id, expiry_recorded_at__isnull=True)
            if grant.update(expiry_recorded_at=now):
                audit.record(
                    "breakglass.expire",
                    target_type="luxmail.breakglassgrant",
                    target_id=str(BreakGlassGrant.objects.get(pk=grant_id).uuid),
                    details={"grant": grant_id},
                )
                done += 1
    return done


class BreakGlassPermissionBackend(BaseBackend):
    """Gives ``luxmail.view_phi`` to an active user during their open grant.

    Authenticates nobody (``authenticate`` is BaseBackend's, returning None). The
    answer is cached on the user object, which lives for one request.
    """

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if obj is not None or not getattr(user_obj, "is_active", False):
            return set()
        if user_obj.is_anonymous:
            return set()
        cached = getattr(user_obj, _CACHE_ATTR, None)
        if cached is None:
            cached = active_grant_id(user_obj.pk) is not None
            setattr(user_obj, _CACHE_ATTR, cached)
        return {PHI_PERMISSION} if cached else set()
