"""Legal holds: place, release and look up (docs/operations.md "Legal hold").

A hold on the organization, a campaign or a contact suspends every retention purge
that would delete data it covers (``luxmail/retention.py`` asks :func:`active_holds`
before each run). Placing and releasing are audited; holds are never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from luxmail import audit
from luxmail.actors import Actor, user_of
from luxmail.models import HoldScope, LegalHold


class HoldError(Exception):
    """A hold request that cannot be carried out; the message is shown to the user."""


@dataclass(frozen=True)
class ActiveHolds:
    """The holds in force at one moment, as sets of ids a purge excludes."""

    organization: bool
    campaign_ids: frozenset[int]
    contact_ids: frozenset[int]

    @property
    def any(self) -> bool:
        return self.organization or bool(self.campaign_ids or self.contact_ids)

    def as_counts(self) -> dict[str, int]:
        return {
            "organization": int(self.organization),
            "campaigns": len(self.campaign_ids),
            "contacts": len(self.contact_ids),
        }


def active_holds() -> ActiveHolds:
    """Every hold not yet released. Holds are few (legal matters), so one query."""
    rows = LegalHold.objects.filter(released_at__isnull=True).values_list("scope", "object_id")
    organization = False
    campaigns: set[int] = set()
    contacts: set[int] = set()
    for scope, object_id in rows:
        if scope == HoldScope.ORGANIZATION:
            organization = True
        elif scope == HoldScope.CAMPAIGN:
            campaigns.add(object_id)
        elif scope == HoldScope.CONTACT:
            contacts.add(object_id)
    return ActiveHolds(organization, frozenset(campaigns), frozenset(contacts))


def holds_on(scope: str, object_id: int = 0) -> list[LegalHold]:
    """Active holds on one object (for the banners on its page), newest first."""
    return list(
        LegalHold.objects.filter(scope=scope, object_id=object_id, released_at__isnull=True)
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )


def legal_hold_place(
    *, scope: str, object_id: int = 0, reason: str, actor: Actor, request: object = None
) -> LegalHold:
    """Place a hold; audited as ``legal_hold.place`` (scope, id and reason length only,
    since the reason is free text). Raises :class:`HoldError` for a bad scope or an
    empty reason. Placing a second hold on the same object is allowed (two matters)."""
    if scope not in HoldScope.values:
        raise HoldError("Choose the organization, a campaign or a contact.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise HoldError("Say why the data is held (a matter or ticket reference).")
    if len(reason) > 500:
        raise HoldError("Keep the reason under 500 characters.")
    if scope == HoldScope.ORGANIZATION:
        object_id = 0
    elif object_id <= 0:
        raise HoldError("Name the campaign or contact to hold.")
    with transaction.atomic():
        hold = LegalHold.objects.create(
            scope=scope, object_id=object_id, reason=reason, created_by=user_of(actor)
        )
        audit.record(
            "legal_hold.place",
            actor=actor,
            request=request,  # type: ignore[arg-type]  # an HttpRequest or None
            target=hold,
            details={"scope": scope, "object_id": object_id, "hold_id": hold.pk},
        )
    return hold


def legal_hold_release(
    *, hold: LegalHold, reason: str, actor: Actor, request: object = None
) -> LegalHold:
    """Release an active hold (idempotent refusal: releasing twice raises
    :class:`HoldError`). Audited as ``legal_hold.release``."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise HoldError("Say why the hold ends.")
    with transaction.atomic():
        locked = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if locked.released_at is not None:
            raise HoldError("This hold was already released.")
        locked.released_at = timezone.now()
        locked.released_by = user_of(actor)
        locked.release_reason = reason[:500]
        locked.save(update_fields=["released_at", "released_by", "release_reason"])
        audit.record(
            "legal_hold.release",
            actor=actor,
            request=request,  # type: ignore[arg-type]  # an HttpRequest or None
            target=locked,
            details={"scope": locked.scope, "object_id": locked.object_id, "hold_id": locked.pk},
        )
    return locked
