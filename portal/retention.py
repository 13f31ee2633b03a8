"""Portal messages in the retention purge (``luxmail/retention.py``).

A portal message (encrypted subject and bodies, its codes, sessions and the patient's
replies) is deleted ``OrgSettings.portal_retention_days`` after it expired; before
then the recipient may still be told it expired, and staff may read the replies. A
hold on its campaign or contact keeps it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from luxmail import retention
from portal.models import PortalMessage


def _expired(cutoff: datetime) -> QuerySet[Any]:
    return PortalMessage.objects.filter(expires_at__lt=cutoff)


def register() -> None:
    retention.register(
        retention.Purge(
            name="portal_messages",
            label="Secure portal messages and replies",
            days="portal_retention_days",
            model=PortalMessage,
            expired=_expired,
            exclude_held=retention.unheld(campaign="campaign_id", contact="contact_id"),
        )
    )
