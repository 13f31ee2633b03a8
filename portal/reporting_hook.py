"""What the portal tells reporting (issue 5, item 4).

* A verified portal read counts as a verified human open: the portal hands the message
  and campaign ids and the time to ``reporting.services.portal_read_record``, which
  buffers it like an open pixel hit and the ingester labels it ``human`` with reason
  ``portal_verified`` (``reporting.classification.PORTAL_VERIFIED``).
* Webhook events ``portal_read`` (the first verified read) and ``portal_reply`` go to the
  endpoints subscribed to them (``reporting.services.webhook_emit``), with ids and times
  only — never PHI.

The portal keeps its own record too (``PortalMessage.first_read_at`` / ``read_count``),
so nothing is lost if reporting cannot take the open at that moment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from portal.models import PortalMessage
from reporting import services, webhooks
from reporting.classification import PORTAL_VERIFIED, RULESET_VERSION


def _verdict() -> dict[str, Any]:
    return {
        "label": "human",
        "reason": PORTAL_VERIFIED,
        "ruleset_version": RULESET_VERSION,
        "device_unknown": False,
    }


def record_portal_open(*, message_id: int, campaign_id: int, occurred_at: dt.datetime) -> bool:
    """Record the verified open with reporting (portal sits above reporting: a plain call)."""
    services.portal_read_record(message_id=message_id, campaign_id=campaign_id, at=occurred_at)
    return True


def emit(event_type: str, *, portal_message: PortalMessage, occurred_at: dt.datetime) -> int:
    """Queue a ``portal_read`` / ``portal_reply`` webhook event (ids and times only)."""
    if portal_message.message_id is None:
        return 0
    campaign = portal_message.campaign
    contact = portal_message.contact
    external_id = contact.external_id if contact is not None else None
    try:
        payload = webhooks.build_payload(
            event_type=event_type,
            message_id=portal_message.message_id,
            campaign_id=portal_message.campaign_id,
            campaign_marketing_id=(campaign.marketing_id or None) if campaign else None,
            contact_external_id=external_id or None,
            event_time=occurred_at,
            classification=_verdict() if event_type == "portal_read" else None,
        )
    except webhooks.WebhookPayloadError:
        # An external id that is not an identifier (refused by the builder): send the
        # event without it rather than not at all.
        payload = webhooks.build_payload(
            event_type=event_type,
            message_id=portal_message.message_id,
            campaign_id=portal_message.campaign_id,
            campaign_marketing_id=None,
            contact_external_id=None,
            event_time=occurred_at,
            classification=_verdict() if event_type == "portal_read" else None,
        )
    return services.webhook_emit(event_type=event_type, payload=payload)
