"""The contacts page's "bounce reason" filter, filled from campaigns' bounce events.

Registered in ``CampaignsConfig.ready`` with ``contacts.browse_sources`` (contacts may
not import campaigns). The reasons are the feedback classifier's vocabulary
(``campaigns/sending/feedback/types.py``) plus the complaint and the provider-reported
hard bounce that ``campaigns/sending/bounces.py`` also records.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from campaigns.models import BounceEvent
from campaigns.sending.feedback.types import Reason
from contacts.browse_sources import BounceFilterSource

EXTRA = {"complaint": "Complaint", "hard_bounce": "Hard bounce (provider report)"}


def reason_choices() -> list[tuple[str, str]]:
    found = [(r.value, r.value.replace("_", " ").capitalize()) for r in Reason]
    return found + sorted(EXTRA.items())


def contacts_with_bounce(reason: str) -> Q:
    return Q(Exists(BounceEvent.objects.filter(contact=OuterRef("pk"), reason=reason)))


SOURCE = BounceFilterSource(choices=reason_choices, contacts_q=contacts_with_bounce)
