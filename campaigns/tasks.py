"""Celery shells around the send pipeline. Ids in, never PHI; bounded work per task.

``send_batch`` sends one bounded batch and re-queues itself (Saleor style) while the
campaign has claimable work, paced to the campaign's throttle. A campaign runs at most
``LUXMAIL_SEND_CHAINS`` chains: each holds a slot (``SendChain``) with a fencing token
passed from task to task; a task whose token was superseded exits, and a task started
without one takes a free slot or exits. Beat runs ``start_due_campaigns`` and
``recover_sending`` (lease recovery, restarting chains whose slot expired).
"""

from __future__ import annotations

import logging
import time
import uuid

from celery import shared_task
from django.db import OperationalError

from campaigns import jobs, services
from campaigns.models import Campaign
from campaigns.sending import delivery, queue
from luxmail import conf

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 300


def _lease() -> int:
    return conf.send_lease_seconds()


@shared_task(
    name=jobs.SEND_BATCH.name,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=10,
    ignore_result=True,
)
def send_batch(campaign_id: int, slot_id: int | None = None, hold_id: str | None = None) -> None:
    # ``slot_id``/``hold_id``: the chain slot this task holds and its fencing token (a
    # random UUID), passed from one task of a chain to the next; absent on a new chain.
    lease = _lease()
    slot = slot_id
    if slot is None or hold_id is None:
        held = queue.chain_acquire(
            campaign_id=campaign_id, slots=services.send_parallelism(), lease_seconds=lease
        )
        if held is None:
            return  # every slot has a live chain: this one is not needed
        slot, fence = held
    else:
        fence = uuid.UUID(hold_id)
        if not queue.chain_renew(campaign_id=campaign_id, slot=slot, token=fence, seconds=lease):
            return  # superseded (the slot expired and another chain took it)
    started = time.monotonic()
    try:
        report = delivery.send_batch(campaign_id=campaign_id, chain=(slot, fence))
    except delivery.SendRefused as error:
        queue.chain_release(campaign_id=campaign_id, slot=slot, token=fence)
        services.campaign_halt(campaign_id=campaign_id, reason=str(error))
        return
    except BaseException:
        # The retry (or the recovery sweep) starts from a free slot.
        queue.chain_release(campaign_id=campaign_id, slot=slot, token=fence)
        raise
    if report.stopped == "superseded":
        return

    def then(countdown: float) -> None:
        # Hold the slot through the wait, so the sweep does not start a second chain.
        if not queue.chain_renew(
            campaign_id=campaign_id, slot=slot, token=fence, seconds=countdown + lease
        ):
            return
        args = (campaign_id, slot, str(fence))
        if countdown:
            send_batch.apply_async(args, countdown=countdown)
        else:
            send_batch.apply_async(args)

    if report.stopped == "lease lost":
        then(0)
        return
    if report.stopped:
        queue.chain_release(campaign_id=campaign_id, slot=slot, token=fence)
        services.campaign_finish_if_done(campaign_id=campaign_id)
        # Resumed while this chain was stopping: start again (from a free slot; a
        # chain the resume started may already hold it).
        if report.stopped == "paused" and services.campaign_is_sending(campaign_id=campaign_id):
            send_batch.delay(campaign_id)
        return
    if report.claimed:
        per_minute = Campaign.objects.values_list("throttle_per_minute", flat=True).get(
            pk=campaign_id
        )
        then(
            delivery.pace(
                elapsed=time.monotonic() - started,
                # Rows held for quiet hours were not sent: they do not use the throttle.
                sent=report.claimed - report.held,
                per_minute=per_minute,
                chains=services.send_parallelism(),
            )
        )
        return
    if services.campaign_finish_if_done(campaign_id=campaign_id):
        queue.chain_release(campaign_id=campaign_id, slot=slot, token=fence)
        return
    wait = delivery.wait_seconds(report)
    if wait is not None and wait > 0 and not send_batch.request.is_eager:
        # Only deferred messages remain: come back when the first is due.
        then(min(wait, MAX_WAIT_SECONDS))
        return
    # Run eagerly (tests, LUXMAIL_CELERY_EAGER) a countdown is not honoured: coming back
    # at once would recurse until the stack overflows. The chain ends; recover_sending
    # starts a new one once messages are due.
    # Otherwise the remaining rows are claimed by other chains (or by a dead worker,
    # whose lease recover_sending waits out): this chain ends and frees its slot.
    queue.chain_release(campaign_id=campaign_id, slot=slot, token=fence)


@shared_task(ignore_result=True)
def start_due_campaigns() -> int:
    return services.campaigns_start_due()


@shared_task(ignore_result=True)
def recover_sending() -> dict[str, int]:
    return services.campaigns_recover()


@shared_task(name=jobs.PRESEND_LINKS.name, ignore_result=True)
def presend_links(campaign_id: int) -> None:
    """Probe a campaign's links for its pre-send check (results go to the cache)."""
    services.presend_links_probe(campaign_id=campaign_id)
