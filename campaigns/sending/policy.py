"""The organization's suppression policy by reason (docs/operations.md "Bounces,
complaints and sender health").

Only the recipient's own reasons can suppress: recipient-permanent ones at once,
recipient-transient ones after ``soft_bounce_limit`` within ``soft_bounce_days``; an
Admin may relax either per reason (``reason_actions``). Sender-side, transient and
"none" reasons never suppress, whatever the policy row says.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from campaigns.models import BounceEvent, FeedbackPolicy
from campaigns.sending.feedback.types import SCOPE, Reason, Scope
from luxmail import conf

SUPPRESS = "suppress"  # at once
COUNT = "count"  # after the soft-bounce limit within the window
NEVER = "never"
ACTIONS = (SUPPRESS, COUNT, NEVER)

DEFAULT_ACTION = {
    Scope.RECIPIENT_PERMANENT: SUPPRESS,
    Scope.RECIPIENT_TRANSIENT: COUNT,
    Scope.SENDER: NEVER,
    Scope.TRANSIENT: NEVER,
    Scope.NONE: NEVER,
}
# Reasons whose action an Admin may choose; every other reason is fixed to "never".
CONFIGURABLE = tuple(
    r for r in Reason if SCOPE[r] in (Scope.RECIPIENT_PERMANENT, Scope.RECIPIENT_TRANSIENT)
)


def current() -> FeedbackPolicy:
    """The policy row, created with the deployment's defaults on first use."""
    row, _ = FeedbackPolicy.objects.get_or_create(pk=1, defaults=defaults())
    return row


def defaults() -> dict[str, Any]:
    return {
        "soft_bounce_limit": conf.soft_bounce_limit(),
        "soft_bounce_days": conf.soft_bounce_days(),
        "autopause_min_messages": conf.autopause_min_messages(),
        "autopause_hard_bounce_percent": conf.autopause_hard_bounce_percent(),
        "autopause_complaint_percent": conf.autopause_complaint_percent(),
        "autopause_provider_blocks": conf.autopause_provider_blocks(),
    }


def action_for(reason: str, row: FeedbackPolicy | None = None) -> str:
    try:
        scope = SCOPE[Reason(reason)]
    except ValueError:
        return NEVER
    default = DEFAULT_ACTION[scope]
    if default == NEVER:
        return NEVER
    chosen = (row or current()).reason_actions.get(reason, default)
    return chosen if chosen in ACTIONS else default


def table(row: FeedbackPolicy | None = None) -> list[dict[str, str]]:
    """Every reason with its scope and the action applied (for the UI, API and docs)."""
    row = row or current()
    return [
        {"reason": r.value, "scope": SCOPE[r].value, "action": action_for(r.value, row)}
        for r in Reason
    ]


def should_suppress(*, reason: str, scope: str, contact_id: int) -> bool:
    """Whether this bounce suppresses the contact. Called after the bounce is stored,
    so the count includes it. Transient events (delay warnings, expiries, network and
    system trouble) never suppress and are not counted."""
    if scope == Scope.TRANSIENT:
        return False
    row = current()
    action = action_for(reason, row)
    if action == SUPPRESS:
        return True
    if action != COUNT:
        return False
    since = timezone.now() - timedelta(days=row.soft_bounce_days)
    counted = [r.value for r in CONFIGURABLE if action_for(r.value, row) == COUNT]
    recent = (
        BounceEvent.objects.filter(
            contact_id=contact_id, reason__in=counted, received_at__gte=since
        )
        .exclude(scope=Scope.TRANSIENT)
        .count()
    )
    return recent >= row.soft_bounce_limit
