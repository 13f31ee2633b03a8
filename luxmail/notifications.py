"""In-app notifications for Admins (``luxmail.models.Notification``): minimal and generic.

Any app may :func:`notify` (a PHI-free title and an in-app link); the navigation shows
the unread count and ``/notifications/`` lists them. Marking read is audited.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit
from luxmail.actors import Actor, user_of
from luxmail.models import Notification


def notify(*, kind: str, title: str, link: str = "") -> Notification:
    """Create one notification (title: a sentence without PHI)."""
    return Notification.objects.create(kind=kind[:40], title=title[:300], link=link[:300])


def unread_count() -> int:
    return Notification.objects.filter(read_at__isnull=True).count()


def listed(*, limit: int = 100) -> QuerySet[Notification]:
    return Notification.objects.select_related("read_by")[:limit]


def mark_all_read(*, actor: Actor, request: HttpRequest | None = None) -> int:
    """Mark every unread notification read; audits ``notification.read`` with the count."""
    count = Notification.objects.filter(read_at__isnull=True).update(
        read_at=timezone.now(), read_by=user_of(actor)
    )
    if count:
        audit.record("notification.read", actor=actor, request=request, details={"count": count})
    return count
