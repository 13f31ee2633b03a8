"""Webhook deliveries through a real Celery worker and the Redis broker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from reporting import services, webhooks
from reporting.classification import Label, Verdict
from reporting.models import WebhookDelivery
from reporting.tasks import dispatch_due_webhooks

pytestmark = [
    pytest.mark.celery,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_worker_delivers_signed_events_and_the_sweep_recovers_lost_ones(
    celery_worker_process, make_user, recording_server
):
    admin = make_user("Admin")
    hook = services.webhook_endpoint_create(
        name="CRM", url=recording_server.url + "/hook", event_types=["opened"], actor=admin
    )
    for message_id in (1, 2, 3):
        payload = webhooks.build_payload(
            event_type="opened",
            message_id=message_id,
            campaign_id=7,
            campaign_marketing_id="SPRING",
            contact_external_id=f"CRM-{message_id}",
            event_time=timezone.now(),
            classification=Verdict(Label.HUMAN, "google_image_proxy", device_unknown=True),
        )
        assert services.webhook_emit(event_type="opened", payload=payload) == 1

    wait_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 3)
    assert len(recording_server.requests) == 3
    for received in recording_server.requests:
        assert webhooks.verify(hook.secret, received.headers["X-LuxMail-Signature"], received.body)

    # A delivery whose task was lost (never enqueued) is picked up by the periodic sweep.
    lost = WebhookDelivery.objects.create(
        endpoint=hook.endpoint,
        event_type="opened",
        event_id="evt_lost",
        payload=webhooks.build_payload(
            event_type="opened",
            message_id=4,
            campaign_id=7,
            campaign_marketing_id=None,
            contact_external_id=None,
            event_time=timezone.now(),
            event_id="evt_lost",
        ),
        next_attempt_at=timezone.now() - timedelta(minutes=5),
    )
    dispatch_due_webhooks.delay()
    wait_until(lambda: WebhookDelivery.objects.get(pk=lost.pk).status == "succeeded")
    assert len(recording_server.requests) == 4
