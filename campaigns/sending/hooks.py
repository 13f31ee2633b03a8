"""The interfaces sending defines for the layers above it (docs/architecture.md, layers).

Campaigns sits below ``portal`` and ``reporting`` and never imports them. Where sending
needs them — the portal as a secure channel, reporting's link and open tracking — it
calls an implementation that the higher app registers from its ``AppConfig.ready()``:

* :class:`LinkTracker` — ``reporting.apps`` registers ``reporting.tracking``.
* :class:`PortalChannel` — ``portal.apps`` registers ``portal.channel``.
* :class:`FeedbackListener` — ``reporting.apps`` registers ``reporting.feedback_hook``
  (the ``campaign_auto_paused`` webhook event).
* :class:`QuietHoursGate` — ``campaigns.apps`` registers
  ``campaigns.scheduling.planner.QUIET_GATE`` (quiet hours per recipient zone, checked
  again at claim time).

Without a registration, tracking is off (links stay plain) and the portal channel is
unavailable (:class:`PortalUnavailable`); nothing is looked up by name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from campaigns.content.splice import SplicedPart
    from campaigns.models import Campaign, Message


class LinkTracker(Protocol):
    def rewrite_links(self, html: str, *, message_id: int, campaign_id: int) -> str: ...

    def add_open_pixel(self, html: str, *, message_id: int, campaign_id: int) -> str: ...

    def track_part(
        self, part: SplicedPart, *, campaign_id: int, clicks: bool, opens: bool
    ) -> SplicedPart | None:
        """The HTML part with the tracking applied once, as marks; None when only
        tracking each rendered message is sure to give the same result."""
        ...

    def marks(
        self, keys: tuple[object, ...], *, message_id: int, campaign_id: int, pixel: bool = True
    ) -> dict[object, object]:
        """One message's text of the marks of a part from :meth:`track_part`."""
        ...


class PortalChannel(Protocol):
    def store_for_delivery(
        self,
        *,
        message_id: int,
        campaign_id: int,
        contact_id: int | None,
        recipient_email: str,
        subject: str,
        html: str,
        text: str,
        settings_row: Any,
        unsubscribe_url: str,
    ) -> tuple[str, str, str]:
        """Store the message encrypted; return the PHI-free notice (subject, html, text)."""
        ...

    def status(self, message: Message) -> dict[str, Any] | None:
        """The portal state of a delivered message for the API, or None."""
        ...


class FeedbackListener(Protocol):
    def campaign_auto_paused(
        self, *, campaign_id: int, marketing_id: str | None, at: datetime
    ) -> None: ...


class QuietHoursGate(Protocol):
    def applies(self, campaign: Campaign) -> bool:
        """Whether quiet hours hold this campaign's messages (marketing, no opt-out)."""
        ...

    def releases(self, names: Iterable[str | None], *, now: datetime) -> dict[str | None, datetime]:
        """Of these contact time-zone names, those inside quiet hours at ``now``, each
        with the moment they end (UTC); ``names`` is not read when there are none."""
        ...


class PortalUnavailable(RuntimeError):
    """The portal channel was chosen but no portal app registered itself."""


_tracker: LinkTracker | None = None
_portal: PortalChannel | None = None
_feedback_listeners: list[FeedbackListener] = []
_quiet_gate: QuietHoursGate | None = None


def register_quiet_gate(gate: QuietHoursGate) -> None:
    global _quiet_gate
    _quiet_gate = gate


def quiet_gate() -> QuietHoursGate | None:
    return _quiet_gate


def register_tracker(tracker: LinkTracker) -> None:
    global _tracker
    _tracker = tracker


def tracker() -> LinkTracker | None:
    return _tracker


def register_portal(portal: PortalChannel) -> None:
    global _portal
    _portal = portal


def portal() -> PortalChannel:
    if _portal is None:
        raise PortalUnavailable("The secure portal is not installed on this deployment.")
    return _portal


def portal_installed() -> bool:
    return _portal is not None


def register_feedback_listener(listener: FeedbackListener) -> None:
    if listener not in _feedback_listeners:
        _feedback_listeners.append(listener)


def feedback_campaign_auto_paused(
    *, campaign_id: int, marketing_id: str | None, at: datetime
) -> None:
    """Tell every registered listener; a failing listener never undoes the pause."""
    for listener in list(_feedback_listeners):
        try:
            listener.campaign_auto_paused(campaign_id=campaign_id, marketing_id=marketing_id, at=at)
        except Exception:
            logger.exception("feedback listener failed for campaign %s", campaign_id)
