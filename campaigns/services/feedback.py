"""Writes about mail feedback: the organization's suppression/auto-pause policy and the
reprocessing of mail the parser could not read (``campaigns.sending.bounces``)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.models import FeedbackPolicy, UnparsedFeedback, UnparsedState
from campaigns.sending import bounces, policy
from campaigns.services.errors import CampaignError
from luxmail import audit, crypto
from luxmail.actors import Actor


class FeedbackPolicyError(CampaignError):
    """A policy value out of range; the message says which."""


_LIMITS: dict[str, tuple[Any, Any]] = {
    "soft_bounce_limit": (1, 50),
    "soft_bounce_days": (1, 365),
    "autopause_min_messages": (1, 10_000_000),
    "autopause_hard_bounce_percent": (Decimal("0.01"), Decimal(100)),
    "autopause_complaint_percent": (Decimal("0.001"), Decimal(100)),
    "autopause_provider_blocks": (1, 1_000_000),
}


def _value(name: str, raw: Any) -> Any:
    low, high = _LIMITS[name]
    try:
        value = Decimal(str(raw)) if isinstance(low, Decimal) else int(raw)
    except (TypeError, ValueError, InvalidOperation):
        raise FeedbackPolicyError(f"{name}: a number is needed.") from None
    if not low <= value <= high:
        raise FeedbackPolicyError(f"{name}: between {low} and {high}.")
    return value


def feedback_policy_update(
    *, actor: Actor, request: HttpRequest | None = None, **changes: Any
) -> FeedbackPolicy:
    """Change the policy (thresholds, and ``reason_actions`` for recipient reasons only:
    sender-side and transient reasons cannot be made to suppress). Audits
    ``feedback_policy.update`` with the changed values. Raises FeedbackPolicyError."""
    values: dict[str, Any] = {}
    for name, raw in changes.items():
        if name == "reason_actions":
            if not isinstance(raw, dict):
                raise FeedbackPolicyError("reason_actions: an object of reason → action.")
            allowed = {r.value for r in policy.CONFIGURABLE}
            for reason, action in raw.items():
                if reason not in allowed:
                    raise FeedbackPolicyError(
                        f"reason_actions: {str(reason)[:40]} cannot be configured "
                        "(sender-side and transient reasons never suppress)."
                    )
                if action not in policy.ACTIONS:
                    raise FeedbackPolicyError(
                        f"reason_actions: use one of {', '.join(policy.ACTIONS)}."
                    )
            values[name] = dict(raw)
        elif name in _LIMITS:
            values[name] = _value(name, raw)
        else:
            raise FeedbackPolicyError(f"Unknown policy field: {str(name)[:40]}.")
    with transaction.atomic():
        policy.current()
        row = FeedbackPolicy.objects.select_for_update().get(pk=1)
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        for name, value in changed.items():
            setattr(row, name, value)
        if changed:
            row.save()
            audit.record(
                "feedback_policy.update",
                actor=actor,
                request=request,
                target=row,
                details={k: str(v) if isinstance(v, Decimal) else v for k, v in changed.items()},
            )
    return row


def unparsed_reprocess(
    *, item: UnparsedFeedback, actor: Actor, request: HttpRequest | None = None
) -> bounces.Outcome | None:
    """Read a kept mail again with the current parser; when it now yields something,
    apply it and drop the stored body. Decrypting is a PHI access (audited).
    Returns the outcome, or ``None`` when the item was already reprocessed."""
    with transaction.atomic():
        row = UnparsedFeedback.objects.select_for_update().get(pk=item.pk)
        if row.state != UnparsedState.PENDING or row.body is None:
            return None
        access = crypto.phi_access(
            actor=actor, purpose="bounce.reprocess", target=row, request=request
        )
        raw = crypto.reveal(row, "body", access=access)
        recipients = [f"bounces+{token}@reprocess.invalid" for token in row.envelope_tokens]
        try:
            outcome = bounces.bounce_process(
                raw=raw,
                source=bounces.REPROCESS_SOURCE,
                envelope_recipients=recipients,
                actor=actor,
                request=request,
                keep_unparsed=False,
            )
        except bounces.BounceError as error:
            outcome = None
            row.outcome = str(error)[:200]
        row.attempts += 1
        row.last_attempt_at = timezone.now()
        if outcome is not None and not outcome.unparsed:
            row.state = UnparsedState.REPROCESSED
            row.body = None
            row.outcome = (
                f"{outcome.kind}: {outcome.events} events, {outcome.suppressed} suppressed, "
                f"{outcome.sender_events} sender-health, {outcome.unmatched} unmatched"
            )[:200]
        elif outcome is not None:
            row.outcome = "Still unreadable by the current parser."
        row.save()
        audit.record(
            "bounce.reprocess",
            actor=actor,
            request=request,
            target=row,
            details={"state": row.state, "attempts": row.attempts},
        )
    return outcome


def unparsed_reprocess_pending(*, actor: Actor, limit: int = 500) -> dict[str, int]:
    """Reprocess every pending item (after a parser upgrade); returns counts."""
    done = {"read": 0, "still_unread": 0}
    for item in UnparsedFeedback.objects.filter(state=UnparsedState.PENDING)[:limit]:
        outcome = unparsed_reprocess(item=item, actor=actor)
        done["read" if outcome is not None and not outcome.unparsed else "still_unread"] += 1
    return done
