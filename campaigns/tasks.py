"""Celery shells around the send pipeline. Ids in, never PHI; bounded work per task.

``send_batch`` sends one bounded batch and re-queues itself (Saleor style) while the
campaign has claimable work, paced to the campaign's throttle. Several chains run per
campaign (``LUXMAIL_SEND_CHAINS``). Beat runs ``start_due_campaigns`` and
``recover_sending`` (lease recovery, restarting chains of a dead worker).
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import OperationalError

from campaigns import delivery, services

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 300


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=10,
    ignore_result=True,
)
def send_batch(campaign_id: int) -> None:
    started = time.monotonic()
    try:
        report = delivery.send_batch(campaign_id=campaign_id)
    except delivery.SendRefused as error:
        services.campaign_halt(campaign_id=campaign_id, reason=str(error))
        return
    if report.stopped:
        services.campaign_finish_if_done(campaign_id=campaign_id)
        return
    if report.claimed:
        from campaigns.models import Campaign

        per_minute = Campaign.objects.values_list("throttle_per_minute", flat=True).get(
            pk=campaign_id
        )
        countdown = delivery.pace(
            elapsed=time.monotonic() - started,
            sent=report.claimed,
            per_minute=per_minute,
            chains=services.send_parallelism(),
        )
        if countdown:
            send_batch.apply_async((campaign_id,), countdown=countdown)
        else:
            send_batch.delay(campaign_id)
        return
    if services.campaign_finish_if_done(campaign_id=campaign_id):
        return
    wait = delivery.wait_seconds(report)
    if wait is not None and wait > 0:
        # Only deferred messages remain: come back when the first is due.
        send_batch.apply_async((campaign_id,), countdown=min(wait, MAX_WAIT_SECONDS))
    # Otherwise the remaining rows are claimed by other chains (or by a dead worker,
    # whose lease recover_sending waits out): this chain ends.


@shared_task(ignore_result=True)
def start_due_campaigns() -> int:
    return services.campaigns_start_due()


@shared_task(ignore_result=True)
def recover_sending() -> dict[str, int]:
    return services.campaigns_recover()
