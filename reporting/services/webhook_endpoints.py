"""Webhook endpoints: validation, create/update/enable/disable, secrets, delivery policy."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from kombu.exceptions import OperationalError

from luxmail import audit, crypto
from luxmail.actors import Actor, user_of
from reporting import jobs, webhooks
from reporting.models import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)

# --- webhooks: configuration --------------------------------------------------------------

logger = logging.getLogger(__name__)


class WebhookConfigError(ValueError):
    """An endpoint setting an Admin entered is not acceptable (message says why)."""


@dataclass(frozen=True)
class WebhookPolicy:
    """Retry and disable policy (docs/api.md#webhooks)."""

    max_attempts: int = 10
    backoff_base_seconds: int = 30
    backoff_max_seconds: int = 6 * 3600
    # Disable after this many failed attempts in a row that span at least this long,
    # so a short outage at high volume does not switch an integration off.
    disable_after_failures: int = 10
    disable_after_seconds: int = 3600
    timeout_seconds: float = 10.0
    test_timeout_seconds: float = 5.0
    # Longer delays are left to the periodic dispatcher (Redis redelivers ETA tasks
    # older than its visibility timeout, one hour by default).
    max_countdown_seconds: int = 900
    # The dispatcher leaves freshly queued deliveries to their own task for this long.
    dispatch_grace_seconds: int = 30
    rotation_overlap: timedelta = timedelta(hours=24)

    def backoff(self, attempts: int) -> timedelta:
        seconds = self.backoff_base_seconds * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))


POLICY = WebhookPolicy()
EVENT_TYPES = frozenset(WebhookEventType.values)


@dataclass(frozen=True)
class IssuedSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown to the Admin once


def webhook_url_validate(url: str) -> str:
    """Return the URL stripped, or raise :class:`WebhookConfigError` saying what is wrong."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise WebhookConfigError("Enter a full URL starting with https://.")
    if parts.scheme == "http" and settings.PRODUCTION:
        raise WebhookConfigError("Webhook URLs must use https:// so events travel encrypted.")
    if parts.username or parts.password:
        raise WebhookConfigError(
            "Do not put credentials in the URL; receivers verify the signature instead."
        )
    if len(url) > 2000:
        raise WebhookConfigError("The URL is longer than 2,000 characters.")
    return url


def webhook_event_types_validate(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    if not chosen:
        raise WebhookConfigError("Choose at least one event type.")
    unknown = sorted(set(chosen) - EVENT_TYPES)
    if unknown:
        raise WebhookConfigError(f"Unknown event type(s): {', '.join(unknown)}.")
    return chosen


def _name(name: str) -> str:
    name = name.strip()
    if not name:
        raise WebhookConfigError("Give the endpoint a name.")
    return name[:100]


def _endpoint_details(endpoint: WebhookEndpoint) -> dict[str, Any]:
    # The URL is configuration, not PHI; the secret is never audited.
    return {
        "endpoint": str(endpoint.uuid),
        "name": endpoint.name,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "active": endpoint.active,
    }


def webhook_endpoint_create(
    *,
    name: str,
    url: str,
    event_types: Iterable[str],
    actor: Actor,
    request: HttpRequest | None = None,
) -> IssuedSecret:
    """Create an active endpoint with a new signing secret (returned once).

    Raises :class:`WebhookConfigError`. Audits ``webhook.create``.
    """
    endpoint = WebhookEndpoint(
        name=_name(name),
        url=webhook_url_validate(url),
        event_types=webhook_event_types_validate(event_types),
        created_by=user_of(actor),
    )
    secret = webhooks.new_secret()
    crypto.seal(endpoint, "secret", secret)
    with transaction.atomic():
        endpoint.save()
        audit.record(
            "webhook.create",
            actor=actor,
            request=request,
            target=endpoint,
            details=_endpoint_details(endpoint),
        )
    return IssuedSecret(endpoint, secret)


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    actor: Actor,
    request: HttpRequest | None = None,
    name: str | None = None,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    """Change the given settings; ``active`` enables or disables (see below).

    Raises :class:`WebhookConfigError`. Audits ``webhook.update`` with the changes.
    """
    changes: dict[str, list[Any]] = {}
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _name(name)
    if url is not None:
        values["url"] = webhook_url_validate(url)
    if event_types is not None:
        values["event_types"] = webhook_event_types_validate(event_types)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        for field, value in values.items():
            if getattr(locked, field) != value:
                changes[field] = [getattr(locked, field), value]
                setattr(locked, field, value)
        if changes:
            locked.save(update_fields=[*changes, "updated_at"])
            audit.record(
                "webhook.update",
                actor=actor,
                request=request,
                target=locked,
                details={"endpoint": str(locked.uuid), "changed": changes},
            )
    if active is True and not locked.active:
        locked = webhook_endpoint_enable(endpoint=locked, actor=actor, request=request)
    elif active is False and locked.active:
        locked = webhook_endpoint_disable(endpoint=locked, actor=actor, request=request)
    _refresh(endpoint, locked)
    return locked


def _refresh(target: WebhookEndpoint, source: WebhookEndpoint) -> None:
    for field in WebhookEndpoint._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


def webhook_endpoint_enable(
    *, endpoint: WebhookEndpoint, actor: Actor, request: HttpRequest | None = None
) -> WebhookEndpoint:
    """Re-enable an endpoint: failure count reset, outstanding deliveries resume.

    Idempotent. Audits ``webhook.enable``.
    """
    now = timezone.now()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.active:
            return locked
        locked.active = True
        locked.disabled_at = None
        locked.disabled_reason = WebhookEndpoint.DisabledReason.NONE
        locked.consecutive_failures = 0
        locked.failing_since = None
        locked.save()
        outstanding = WebhookDelivery.objects.filter(
            endpoint=locked, status__in=WebhookDelivery.OUTSTANDING
        )
        resumed = list(outstanding.values_list("pk", flat=True)[:1000])
        outstanding.update(
            next_attempt_at=now, locked_until=None, status=WebhookDelivery.Status.RETRYING
        )
        WebhookDelivery.objects.filter(pk__in=resumed, attempts=0).update(
            status=WebhookDelivery.Status.PENDING
        )
        audit.record(
            "webhook.enable",
            actor=actor,
            request=request,
            target=locked,
            details={"endpoint": str(locked.uuid), "resumed": outstanding.count()},
        )
        _enqueue_on_commit(resumed)
    _refresh(endpoint, locked)
    return locked


def webhook_endpoint_disable(
    *, endpoint: WebhookEndpoint, actor: Actor, request: HttpRequest | None = None
) -> WebhookEndpoint:
    """Stop sending to an endpoint (outstanding deliveries wait). Idempotent.

    Audits ``webhook.disable``.
    """
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if not locked.active:
            return locked
        locked.active = False
        locked.disabled_at = timezone.now()
        locked.disabled_reason = WebhookEndpoint.DisabledReason.ADMIN
        locked.save()
        audit.record(
            "webhook.disable",
            actor=actor,
            request=request,
            target=locked,
            details={"endpoint": str(locked.uuid), "reason": "admin"},
        )
    _refresh(endpoint, locked)
    return locked


def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, actor: Actor, request: HttpRequest | None = None
) -> IssuedSecret:
    """Issue a new secret; the old one keeps signing for ``POLICY.rotation_overlap``.

    Deliveries carry one ``v1=`` signature per secret meanwhile, so receivers can
    switch without losing events. Audits ``webhook.rotate_secret``.
    """
    secret = webhooks.new_secret()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        # The envelope is bound to (model, field, row); re-seal the old value for its new field.
        old = crypto.reveal(locked, "secret", access=crypto.secret_access("webhook.rotate"))
        crypto.seal(locked, "previous_secret", old)
        locked.previous_secret_expires_at = timezone.now() + POLICY.rotation_overlap
        crypto.seal(locked, "secret", secret)
        locked.save()
        audit.record(
            "webhook.rotate_secret",
            actor=actor,
            request=request,
            target=locked,
            details={"endpoint": str(locked.uuid)},
        )
    _refresh(endpoint, locked)
    return IssuedSecret(locked, secret)


def webhook_endpoint_delete(
    *, endpoint: WebhookEndpoint, actor: Actor, request: HttpRequest | None = None
) -> None:
    """Delete the endpoint and its delivery log. Audits ``webhook.delete``."""
    with transaction.atomic():
        details = {**_endpoint_details(endpoint), "deliveries": endpoint.deliveries.count()}
        audit.record(
            "webhook.delete", actor=actor, request=request, target=endpoint, details=details
        )
        endpoint.delete()


def _enqueue_on_commit(delivery_ids: Sequence[int], countdown: int | None = None) -> None:
    if not delivery_ids:
        return
    ids = list(delivery_ids)

    def enqueue() -> None:
        try:
            for delivery_id in ids:
                if countdown:
                    jobs.DELIVER_WEBHOOK.apply_async((delivery_id,), countdown=countdown)
                else:
                    jobs.DELIVER_WEBHOOK.delay(delivery_id)
        except OperationalError:
            # The broker (Redis) is down. The deliveries are committed rows: the
            # dispatch sweep enqueues them once it is back. Whoever committed them (the
            # event ingester above all) must carry on.
            logger.warning("Broker unavailable: webhook deliveries wait for the dispatch sweep")

    transaction.on_commit(enqueue)
