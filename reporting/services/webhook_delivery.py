"""Webhook events: emitting, claiming and delivering attempts, redelivery, test sends."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit, crypto
from luxmail.actors import Actor
from reporting import jobs, selectors, webhooks
from reporting.classification import Label, Verdict
from reporting.models import (
    TEST_EVENT_TYPE,
    WebhookDelivery,
    WebhookEndpoint,
)
from reporting.services.webhook_endpoints import (
    EVENT_TYPES,
    POLICY,
    WebhookConfigError,
    _enqueue_on_commit,
)

logger = logging.getLogger(__name__)

# --- webhooks: emitting and delivering ----------------------------------------------------


def webhook_emit(*, event_type: str, payload: dict[str, Any]) -> int:
    """Queue ``payload`` for every active endpoint subscribed to ``event_type``.

    ``payload`` must come from :func:`reporting.webhooks.build_payload` (checked: no
    other fields can ride along). Returns the number of deliveries queued; each is
    sent by Celery after the surrounding transaction commits, with retries.
    Raises ``ValueError`` for an unknown event type or a foreign payload.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type: {event_type}")
    webhooks.check_payload(payload)
    if payload["type"] != event_type:
        raise ValueError("The payload was built for another event type.")
    endpoints = [
        pk
        for pk, types in WebhookEndpoint.objects.filter(active=True).values_list(
            "pk", "event_types"
        )
        if event_type in types
    ]
    if not endpoints:
        return 0
    now = timezone.now()
    with transaction.atomic():
        created = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    endpoint_id=pk,
                    event_type=event_type,
                    event_id=payload["id"],
                    payload=payload,
                    next_attempt_at=now,
                )
                for pk in endpoints
            ]
        )
        _enqueue_on_commit([delivery.pk for delivery in created])
    return len(created)


def webhook_subscribers(*, event_types: Iterable[str]) -> dict[str, list[int]]:
    """Active endpoint ids per event type, for the given types (empty lists left out)."""
    wanted = set(event_types)
    found: dict[str, list[int]] = {}
    for pk, types in WebhookEndpoint.objects.filter(active=True).values_list("pk", "event_types"):
        for event_type in wanted.intersection(types):
            found.setdefault(event_type, []).append(pk)
    return found


def webhook_emit_many(*, events: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """:func:`webhook_emit` for many events at once (one endpoint query, one insert).

    Used by the event ingester; same checks, same guarantees. Returns deliveries queued.
    """
    for event_type, payload in events:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"Unknown webhook event type: {event_type}")
        webhooks.check_payload(payload)
        if payload["type"] != event_type:
            raise ValueError("The payload was built for another event type.")
    subscribers = webhook_subscribers(event_types={event_type for event_type, _ in events})
    if not subscribers:
        return 0
    now = timezone.now()
    rows = [
        WebhookDelivery(
            endpoint_id=pk,
            event_type=event_type,
            event_id=payload["id"],
            payload=payload,
            next_attempt_at=now,
        )
        for event_type, payload in events
        for pk in subscribers.get(event_type, ())
    ]
    with transaction.atomic():
        created = WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
        _enqueue_on_commit([delivery.pk for delivery in created])
    return len(created)


@dataclass(frozen=True)
class _Claim:
    delivery: WebhookDelivery
    url: str
    secrets: list[str]
    test: bool


def _signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    access = crypto.secret_access("webhook.sign")
    found = [crypto.reveal(endpoint, "secret", access=access)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is not None and expires is not None and expires > now:
        found.append(crypto.reveal(endpoint, "previous_secret", access=access))
    return found


def _claim(delivery_id: int, now: datetime, *, force: bool = False) -> _Claim | None:
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status in {
            WebhookDelivery.Status.SUCCEEDED,
            WebhookDelivery.Status.FAILED,
        }:
            return None
        if (
            delivery.status == WebhookDelivery.Status.SENDING
            and delivery.locked_until is not None
            and delivery.locked_until > now
        ):
            return None  # another worker is sending it right now
        if (
            not force
            and delivery.next_attempt_at is not None
            and delivery.next_attempt_at > now + timedelta(seconds=1)
        ):
            return None  # a duplicate or early task; the due one will come
        test = delivery.event_type == TEST_EVENT_TYPE
        endpoint = delivery.endpoint
        if not endpoint.active and not test:
            return None  # paused until an Admin re-enables the endpoint
        timeout = POLICY.test_timeout_seconds if test else POLICY.timeout_seconds
        delivery.status = WebhookDelivery.Status.SENDING
        delivery.locked_until = now + timedelta(seconds=timeout + 60)
        delivery.attempts += 1
        delivery.save(update_fields=["status", "locked_until", "attempts", "updated_at"])
        return _Claim(delivery, endpoint.url, _signing_secrets(endpoint, now), test)


def _headers(claim: _Claim, body: bytes) -> dict[str, str]:
    delivery = claim.delivery
    return {
        "Content-Type": "application/json",
        "User-Agent": webhooks.USER_AGENT,
        "X-LuxMail-Event": delivery.event_type,
        "X-LuxMail-Event-Id": delivery.event_id,
        "X-LuxMail-Delivery": str(delivery.uuid),
        "X-LuxMail-Attempt": str(delivery.attempts),
        webhooks.SIGNATURE_HEADER: webhooks.sign(claim.secrets, body),
    }


def _disable_for_failures(
    endpoint: WebhookEndpoint, now: datetime, delivery: WebhookDelivery
) -> None:
    endpoint.active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = WebhookEndpoint.DisabledReason.FAILURES
    audit.record(
        "webhook.disabled",
        target=endpoint,
        details={
            "endpoint": str(endpoint.uuid),
            "reason": "failures",
            "consecutive_failures": endpoint.consecutive_failures,
            "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
            "last_response_code": delivery.response_code,
        },
    )
    logger.warning(
        "Webhook endpoint %s disabled after %s consecutive failures",
        endpoint.uuid,
        endpoint.consecutive_failures,
    )
    endpoint_id = endpoint.pk

    def notify() -> None:
        jobs.NOTIFY_WEBHOOK_DISABLED.delay(endpoint_id)

    transaction.on_commit(notify)


def _record(claim: _Claim, result: webhooks.PostResult, now: datetime) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=claim.delivery.pk).first()
        if delivery is None:
            return None  # the endpoint was deleted while we were sending
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        delivery.response_code = result.status_code
        delivery.locked_until = None
        if result.ok:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            delivery.last_error = ""
            if not claim.test:
                endpoint.consecutive_failures = 0
                endpoint.failing_since = None
            endpoint.last_success_at = now
        else:
            delivery.last_error = result.error[:300]
            endpoint.last_failure_at = now
            if claim.test or delivery.attempts >= POLICY.max_attempts:
                delivery.status = WebhookDelivery.Status.FAILED
                delivery.next_attempt_at = None
            else:
                delay = POLICY.backoff(delivery.attempts)
                delivery.status = WebhookDelivery.Status.RETRYING
                delivery.next_attempt_at = now + delay
                if delay.total_seconds() <= POLICY.max_countdown_seconds:
                    _enqueue_on_commit([delivery.pk], countdown=int(delay.total_seconds()))
            if not claim.test:
                endpoint.consecutive_failures += 1
                endpoint.failing_since = endpoint.failing_since or now
                if (
                    endpoint.active
                    and endpoint.consecutive_failures >= POLICY.disable_after_failures
                    and now - endpoint.failing_since
                    >= timedelta(seconds=POLICY.disable_after_seconds)
                ):
                    _disable_for_failures(endpoint, now, delivery)
        delivery.save()
        endpoint.save()
    return delivery


def webhook_delivery_attempt(*, delivery_id: int, force: bool = False) -> WebhookDelivery | None:
    """Send one delivery once, if it is due; record the outcome and schedule a retry.

    Idempotent and safe to run twice: a delivery that is done, being sent by another
    worker, not yet due, or whose endpoint is disabled is left alone (returns None).
    Failures retry with exponential backoff up to ``POLICY.max_attempts``; the
    endpoint is disabled (audit ``webhook.disabled``) after ``disable_after_failures``
    failed attempts in a row spanning ``disable_after_seconds``.
    """
    now = timezone.now()
    claim = _claim(delivery_id, now, force=force)
    if claim is None:
        return None
    body = webhooks.encode(claim.delivery.payload)
    timeout = POLICY.test_timeout_seconds if claim.test else POLICY.timeout_seconds
    result = webhooks.post(claim.url, body, _headers(claim, body), timeout=timeout)
    return _record(claim, result, timezone.now())


def webhook_send_test(
    *, endpoint: WebhookEndpoint, actor: Actor, request: HttpRequest | None = None
) -> WebhookDelivery:
    """Send a ``test`` event to ``endpoint`` now (also when disabled) and return the result.

    One attempt, no retry, does not count towards disabling. Audits ``webhook.test``.
    """
    now = timezone.now()
    payload = webhooks.build_payload(
        event_type=TEST_EVENT_TYPE,
        message_id=None,
        campaign_id=None,
        campaign_marketing_id=None,
        contact_external_id=None,
        event_time=now,
        classification=Verdict(label=Label.HUMAN, reason="no_automation_signal"),
        test=True,
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_type=TEST_EVENT_TYPE,
        event_id=payload["id"],
        payload=payload,
        next_attempt_at=now,
    )
    result = webhook_delivery_attempt(delivery_id=delivery.pk, force=True)
    delivery.refresh_from_db()
    audit.record(
        "webhook.test",
        actor=actor,
        request=request,
        target=endpoint,
        details={
            "endpoint": str(endpoint.uuid),
            "delivered": result is not None and delivery.status == WebhookDelivery.Status.SUCCEEDED,
            "response_code": delivery.response_code,
        },
    )
    return delivery


def webhook_delivery_redeliver(
    *, delivery: WebhookDelivery, actor: Actor, request: HttpRequest | None = None
) -> WebhookDelivery:
    """Queue the same event (same event id) to the same endpoint again, as a new log row.

    Raises :class:`WebhookConfigError` while the original is still outstanding or the
    endpoint is disabled. Audits ``webhook.redeliver``.
    """
    if delivery.status in WebhookDelivery.OUTSTANDING:
        raise WebhookConfigError("This delivery is still being retried.")
    if not delivery.endpoint.active:
        raise WebhookConfigError("Enable the endpoint before redelivering events to it.")
    with transaction.atomic():
        copy = WebhookDelivery.objects.create(
            endpoint=delivery.endpoint,
            event_type=delivery.event_type,
            event_id=delivery.event_id,
            payload=delivery.payload,
            next_attempt_at=timezone.now(),
        )
        audit.record(
            "webhook.redeliver",
            actor=actor,
            request=request,
            target=delivery.endpoint,
            details={"delivery": str(delivery.uuid), "new_delivery": str(copy.uuid)},
        )
        _enqueue_on_commit([copy.pk])
    return copy


def webhook_disabled_notify(*, endpoint_id: int) -> int:
    """E-mail the Admins (users who may manage settings) that an endpoint was disabled.

    The dashboard and settings pages show the same notice until the endpoint is
    re-enabled or deleted; this mail makes sure someone looks. No PHI: the endpoint's
    name, URL host and failure count. Returns the number of recipients (0 when the
    endpoint is active again or gone).
    """

    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, active=False).first()
    if endpoint is None or endpoint.disabled_reason != WebhookEndpoint.DisabledReason.FAILURES:
        return 0
    recipients = selectors.settings_admin_emails()
    if not recipients:
        return 0
    host = urlsplit(endpoint.url).hostname or ""
    link = f"{settings.LUXMAIL_BASE_URL}/reports/webhooks/{endpoint.uuid}/"
    send_mail(
        subject=f"[LuxMail] Webhook endpoint '{endpoint.name}' was disabled",
        message=(
            f"LuxMail stopped sending events to the webhook endpoint '{endpoint.name}' "
            f"({host}) after {endpoint.consecutive_failures} failed delivery attempts in a row.\n\n"
            "No new events are queued for it while it is disabled. Fix the receiver, send a "
            "test event, then enable the endpoint; deliveries that were waiting resume.\n\n"
            f"{link}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)


def webhook_dispatch_due(*, limit: int = 500) -> int:
    """Enqueue deliveries that are due but whose task did not run.

    Covers backoffs too long for a countdown, tasks lost with a broker, and workers
    that died mid-send (their lease expired). A delivery is picked only
    ``dispatch_grace_seconds`` after it fell due, so its own task usually wins; a
    duplicate is harmless (see :func:`webhook_delivery_attempt`). Bounded by
    ``limit`` per run; Celery beat runs it every minute.
    """
    now = timezone.now()
    grace = now - timedelta(seconds=POLICY.dispatch_grace_seconds)
    due = (
        WebhookDelivery.objects.filter(endpoint__active=True)
        .filter(
            Q(
                status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
                next_attempt_at__lte=grace,
            )
            | Q(status=WebhookDelivery.Status.SENDING, locked_until__lt=now)
        )
        .exclude(event_type=TEST_EVENT_TYPE)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(due)
    with transaction.atomic():
        _enqueue_on_commit(ids)
    return len(ids)
