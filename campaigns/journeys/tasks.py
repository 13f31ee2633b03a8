"""Celery shells of the journey engine and triggers: ids in (or nothing), bounded work.

Beat runs ``journeys.advance`` (due enrollments) and ``journeys.evaluate_triggers``
(segment/list entry, date offsets); each re-queues itself while its batch came back
full, up to :data:`MAX_INVOCATIONS` in a row (Saleor style), so no task runs unbounded
and overlapping ticks only share the work (claims use ``SKIP LOCKED``).
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from campaigns.journeys import engine, jobs, triggers

MAX_INVOCATIONS = 50


@shared_task(
    name=jobs.ADVANCE.name,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def advance(invocation: int = 0) -> int:
    report = engine.advance_due()
    if report.claimed >= engine.batch_size() and invocation < MAX_INVOCATIONS:
        advance.delay(invocation + 1)
    return report.claimed


@shared_task(name=jobs.EVALUATE_TRIGGERS.name, ignore_result=True)
def evaluate_triggers() -> int:
    journey_ids = triggers.journeys_to_evaluate()
    for journey_id in journey_ids:
        evaluate_journey.delay(journey_id)
    return len(journey_ids)


@shared_task(
    name="journeys.evaluate_journey",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def evaluate_journey(journey_id: int, invocation: int = 0) -> int:
    report = triggers.evaluate_journey(journey_id=journey_id)
    if report.more and invocation < MAX_INVOCATIONS:
        evaluate_journey.delay(journey_id, invocation + 1)
    elif report.enrolled:
        advance.delay()
    return report.enrolled
