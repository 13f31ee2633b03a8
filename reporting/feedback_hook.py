"""The ``campaign_auto_paused`` webhook event: sending tells reporting through
``campaigns.sending.hooks.register_feedback_listener`` (campaigns never imports
reporting). Ids and times only — never PHI; the reason is on the campaign page."""

from __future__ import annotations

import datetime as dt

from reporting import services, webhooks
from reporting.models import WebhookEventType


class _Listener:
    def campaign_auto_paused(
        self, *, campaign_id: int, marketing_id: str | None, at: dt.datetime
    ) -> None:
        try:
            payload = webhooks.build_payload(
                event_type=WebhookEventType.CAMPAIGN_AUTO_PAUSED,
                message_id=None,
                campaign_id=campaign_id,
                campaign_marketing_id=marketing_id,
                contact_external_id=None,
                event_time=at,
            )
        except webhooks.WebhookPayloadError:
            payload = webhooks.build_payload(
                event_type=WebhookEventType.CAMPAIGN_AUTO_PAUSED,
                message_id=None,
                campaign_id=campaign_id,
                campaign_marketing_id=None,
                contact_external_id=None,
                event_time=at,
            )
        services.webhook_emit(event_type=WebhookEventType.CAMPAIGN_AUTO_PAUSED, payload=payload)


LISTENER = _Listener()
