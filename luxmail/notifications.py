"""In-app notifications (``luxmail.models.Notification``) and their optional e-mail.

Any app may :func:`notify` (a PHI-free title and an in-app link). The navigation shows
the unread count, ``/notifications/`` lists them (mark one or all read, audited), and
each staff member chooses per kind whether they also want an e-mail
(``NotificationPreference``; ``/notifications/preferences/``). The e-mail repeats the
title and link only and goes out after the notifying transaction commits, by the
``luxmail.notification_email`` task (ids only).

Notifications are organization-wide (one deployment per organization): every staff member
sees the same list, but read state is per person (``NotificationRead``): the bell counts
what *you* have not read, and "mark all read" marks them for you only. Sources register
here by kind (:data:`KINDS`); the lower layer never learns about the higher one:
campaigns, contacts and the portal call :func:`notify` from their own services or signal
receivers (docs/architecture.md, "Notifications").
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit, conf, jobs
from luxmail.actors import Actor, user_of
from luxmail.models import (
    AuditEvent,
    Notification,
    NotificationPreference,
    NotificationRead,
    User,
)

logger = logging.getLogger(__name__)

# kind -> what the preferences page calls it. Kinds not listed still notify in the app.
KINDS: dict[str, str] = {
    "campaign_finished": "A campaign finished sending",
    "campaign_auto_paused": "A campaign paused itself (bounces, complaints, blocks)",
    "import_errors": "A contact import finished with errors or failed",
    "portal_reply": "A patient replied in the secure portal",
    "approval_requested": "A PHI campaign waits for approval",
    "key_rotation_due": "An encryption key rotation is due",
    "break_glass": "Someone used emergency (break-glass) access",
}


def notify(*, kind: str, title: str, link: str = "") -> Notification:
    """Create one notification (title: a sentence without PHI; link: a path in LuxMail).

    Inside a transaction, the e-mail to those who asked for this kind is queued for
    after the commit (nothing is mailed for a rolled-back change).
    """
    notification = Notification.objects.create(kind=kind[:40], title=title[:300], link=link[:300])
    notification_id = notification.pk
    transaction.on_commit(lambda: jobs.NOTIFICATION_EMAIL.delay(notification_id))
    return notification


def _read_by(user: User) -> QuerySet[NotificationRead]:
    return NotificationRead.objects.filter(notification=OuterRef("pk"), user=user)


def unread_count(*, user: User) -> int:
    """How many notifications ``user`` has not read (the navigation's count)."""
    return Notification.objects.filter(~Exists(_read_by(user))).count()


def listed(*, user: User, limit: int = 100, unread_only: bool = False) -> QuerySet[Notification]:
    """The newest notifications, each with ``read_at``: when ``user`` read it, else ``None``."""
    rows = Notification.objects.annotate(read_at=Subquery(_read_by(user).values("read_at")[:1]))
    if unread_only:
        rows = rows.filter(read_at__isnull=True)
    return rows[:limit]


def mark_all_read(*, actor: Actor, request: HttpRequest | None = None) -> int:
    """Mark every notification the acting staff member has not read as read *for them*
    (others keep theirs); audits ``notification.read`` with the count. Idempotent; an
    actor without a staff account (API key, task) marks nothing."""
    user = user_of(actor)
    if user is None:
        return 0
    unread = list(Notification.objects.filter(~Exists(_read_by(user))).values_list("pk", flat=True))
    now = timezone.now()
    NotificationRead.objects.bulk_create(
        [NotificationRead(notification_id=pk, user=user, read_at=now) for pk in unread],
        batch_size=1000,
        ignore_conflicts=True,  # a concurrent "mark read" of the same one is fine
    )
    if unread:
        audit.record(
            "notification.read", actor=actor, request=request, details={"count": len(unread)}
        )
    return len(unread)


def mark_read(*, notification_id: int, actor: Actor, request: HttpRequest | None = None) -> bool:
    """Mark one notification read for the acting staff member (idempotent: ``False`` when
    they had read it already, it does not exist, or the actor has no staff account);
    audits ``notification.read`` with its id."""
    user = user_of(actor)
    if user is None or not Notification.objects.filter(pk=notification_id).exists():
        return False
    _, created = NotificationRead.objects.get_or_create(notification_id=notification_id, user=user)
    if created:
        audit.record(
            "notification.read",
            actor=actor,
            request=request,
            details={"count": 1, "notification_id": notification_id},
        )
    return created


# --- e-mail preferences ------------------------------------------------------------------


def email_kinds(*, user: User) -> list[str]:
    row = NotificationPreference.objects.filter(user=user).first()
    return [kind for kind in (row.email_kinds if row else []) if kind in KINDS]


def preferences_set(
    *, user: User, kinds: list[str], actor: Actor, request: HttpRequest | None = None
) -> list[str]:
    """Set which kinds ``user`` gets by e-mail (unknown kinds dropped); audits
    ``notification.preferences``."""
    wanted = sorted({kind for kind in kinds if kind in KINDS})
    NotificationPreference.objects.update_or_create(user=user, defaults={"email_kinds": wanted})
    audit.record(
        "notification.preferences", actor=actor, request=request, details={"email": wanted}
    )
    return wanted


def notification_email_send(*, notification_id: int) -> int:
    """E-mail the notification to every active staff member who asked for its kind.

    The mail holds the (PHI-free) title and the absolute link, nothing else. Returns how
    many were sent; a missing notification sends none. Audits ``notification.emailed``
    with the count (not the addresses).
    """
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:
        return 0
    recipients = sorted(
        {
            row.user.email
            for row in NotificationPreference.objects.select_related("user").filter(
                user__is_active=True
            )
            if notification.kind in row.email_kinds and row.user.email
        }
    )
    link = f"{conf.base_url()}{notification.link}" if notification.link else conf.base_url()
    sent = 0
    for address in recipients:
        sent += send_mail(
            subject=f"LuxMail: {notification.title}"[:200],
            message=f"{notification.title}\n\n{link}\n\nChoose which notifications you get by "
            f"e-mail: {conf.base_url()}/notifications/preferences/\n",
            from_email=str(settings.DEFAULT_FROM_EMAIL),
            recipient_list=[address],
        )
    if sent:
        audit.record(
            "notification.emailed",
            details={"notification_id": notification.pk, "kind": notification.kind, "sent": sent},
        )
    return sent


# --- key rotation due --------------------------------------------------------------------


def key_rotation_check(*, now: dt.datetime | None = None) -> Notification | None:
    """Notify ``key_rotation_due`` when the last ``rotate_keys`` (or, before any, the
    first audit event) is older than ``LUXMAIL_KEY_ROTATION_DAYS``. At most one such
    notification per period, so the daily beat task does not repeat it."""
    now = now or timezone.now()
    period = dt.timedelta(days=conf.key_rotation_days())
    last = (
        AuditEvent.objects.filter(action="crypto.rotate")
        .order_by("-id")
        .values("created_at")
        .first()
        or AuditEvent.objects.order_by("id").values("created_at").first()
    )
    if last is None or now - last["created_at"] < period:
        return None
    if Notification.objects.filter(kind="key_rotation_due", created_at__gte=now - period).exists():
        return None
    days = (now - last["created_at"]).days
    return notify(
        kind="key_rotation_due",
        title=f"The encryption keys were last rotated {days} days ago: a rotation is due "
        "(see “Rotating the encryption key” in the operations guide).",
        link="/notifications/",
    )
