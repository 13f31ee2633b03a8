"""Celery shells of the portal: ids in, never PHI."""

from __future__ import annotations

from celery import shared_task

from portal import jobs, services
from portal.services import conversations


@shared_task(
    name=jobs.NOTIFY_REPLY.name,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=8,
    ignore_result=True,
)
def notify_reply(reply_id: int) -> None:
    if not services.portal_reply_notify(reply_id=reply_id):
        raise ConnectionError("the reply notice was not accepted; retrying")


@shared_task(
    name=jobs.NOTIFY_RECIPIENT.name,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=8,
    ignore_result=True,
)
def notify_recipient(staff_reply_id: int) -> None:
    if not conversations.recipient_notice_send(staff_reply_id=staff_reply_id):
        raise ConnectionError("the secure-message notice was not accepted; retrying")
