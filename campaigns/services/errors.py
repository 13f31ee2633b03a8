"""The errors campaigns services raise (friendly, PHI-free), and the actor helper."""

from __future__ import annotations

from typing import TYPE_CHECKING

from luxmail.actors import Actor

if TYPE_CHECKING:
    from luxmail.models import User

from django.contrib.auth import get_user_model


def _user(actor: Actor) -> User | None:
    """The actor as a user for ``created_by`` columns (API keys and the system: None)."""

    return actor if isinstance(actor, get_user_model()) else None


class CampaignError(Exception):
    """A request the user can fix; ``str()`` is a friendly sentence (no PHI)."""


class TransitionError(CampaignError):
    """The campaign's status does not allow this action."""
