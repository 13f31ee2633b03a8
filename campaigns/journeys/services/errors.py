"""The errors journey services raise, and the helpers every journey service uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model

from campaigns.journeys.definition import JourneyError
from campaigns.models import (
    Journey,
)
from luxmail.actors import Actor

if TYPE_CHECKING:
    from luxmail.models import User

PHI_REFUSED = (
    "This journey selects or writes contacts by PHI (health profile or PHI fields); only "
    "the PHI Marketer and Admin roles may change it."
)


class PhiRefused(JourneyError):
    """The journey uses PHI criteria and the actor may not work with PHI."""


class TransitionError(JourneyError):
    """The journey's status does not allow this action."""


class EnrollmentRefused(JourneyError):
    """The contact may not enter the journey now; ``code`` says why (no PHI)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class IdempotencyConflict(JourneyError):
    """An idempotency key was reused for a different event."""


def _user(actor: Actor) -> User | None:

    return actor if isinstance(actor, get_user_model()) else None


def _may_use_phi(actor: Actor, allow_phi: bool | None) -> bool:
    if allow_phi is not None:
        return allow_phi
    return bool(getattr(actor, "has_perm", lambda _: False)("luxmail.view_phi"))


def _lock(journey: Journey) -> Journey:
    return Journey.objects.select_for_update().get(pk=journey.pk)
