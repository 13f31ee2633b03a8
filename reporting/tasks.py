"""Celery shells for reporting: ids in, services do the work (docs/api.md#webhooks)."""

from __future__ import annotations

import smtplib

from celery import shared_task

from reporting import abtests, jobs, services


@shared_task(name=jobs.DELIVER_WEBHOOK.name, ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    """Attempt one webhook delivery; the service schedules its retries."""
    services.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="reporting.dispatch_due_webhooks", ignore_result=True)
def dispatch_due_webhooks() -> int:
    """Re-enqueue due deliveries whose task did not run (long backoffs, lost tasks)."""
    return services.webhook_dispatch_due()


@shared_task(
    name=jobs.NOTIFY_WEBHOOK_DISABLED.name,
    ignore_result=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=60,
    max_retries=5,
)
def notify_webhook_disabled(endpoint_id: int) -> None:
    """E-mail Admins that an endpoint was switched off (relay errors retry)."""
    services.webhook_disabled_notify(endpoint_id=endpoint_id)


@shared_task(name="reporting.ingest_tracking_events", ignore_result=True)
def ingest_tracking_events() -> int:
    """Classify and store buffered opens and clicks (beat: every few seconds)."""
    return int(services.tracking_events_ingest().stored)


@shared_task(name="reporting.send_scheduled_reports", ignore_result=True)
def send_scheduled_reports() -> int:
    """Mail the scheduled reports that are due (beat: every few minutes)."""
    return services.report_schedules_send_due()


@shared_task(name="reporting.decide_ab_tests", ignore_result=True)
def decide_ab_tests() -> int:
    """Choose the winners of A/B tests whose wait is over, on human events (beat)."""
    return abtests.abtests_decide_due()
