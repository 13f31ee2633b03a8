"""Reporting writes: proxy ranges and outbound webhooks.

Every service owns its transaction, audits what an Admin changed, and enqueues
Celery work with ``transaction.on_commit`` (ids only). See docs/tracking.md
(proxy ranges) and docs/api.md#webhooks (webhooks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit, crypto
from reporting import proxy_ranges, selectors, webhooks
from reporting.classification import Label, Verdict
from reporting.models import (
    TEST_EVENT_TYPE,
    ProxyRange,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)

logger = logging.getLogger(__name__)


# --- proxy ranges -------------------------------------------------------------------------


class ProxyRangeLoadError(ValueError):
    """A range list could not be loaded (nothing was changed)."""


@dataclass(frozen=True)
class ReplaceResult:
    source: str
    added: int
    updated: int
    removed: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


def proxy_ranges_changed() -> None:
    """Tell every process to rebuild its range index (after the transaction commits)."""

    def bump() -> None:
        proxy_ranges.bump_version(cache)
        selectors.RANGE_CACHE.expire()

    transaction.on_commit(bump)


def proxy_ranges_replace(
    *,
    source: str,
    specs: Sequence[proxy_ranges.RangeSpec],
    actor: Any = None,
    allow_empty: bool = False,
) -> ReplaceResult:
    """Make the rows of ``source`` equal ``specs``; other sources are untouched.

    Idempotent: loading the same list twice changes nothing the second time. Rows
    keep their ``active`` flag (an Admin's decision survives reloads). Refuses the
    ``admin`` source and, unless ``allow_empty``, an empty list (a truncated download
    must not wipe a source). Audits ``proxy_ranges.load`` with the counts.
    """
    if source == ProxyRange.SOURCE_ADMIN:
        raise ProxyRangeLoadError(
            "The 'admin' source holds ranges added by hand; load into another."
        )
    if not source or not source.replace("_", "").replace("-", "").isalnum():
        raise ProxyRangeLoadError("A source name is letters, digits, '-' and '_' only.")
    if not specs and not allow_empty:
        raise ProxyRangeLoadError(
            f"The list for source '{source}' has no valid ranges; nothing was changed."
        )
    wanted = {spec.cidr: spec for spec in specs}
    with transaction.atomic():
        existing = {
            row.cidr: row for row in ProxyRange.objects.select_for_update().filter(source=source)
        }
        fields = ("scope", "kind", "provider", "label")
        changed: list[ProxyRange] = []
        unchanged = 0
        for cidr, row in existing.items():
            spec = wanted.get(cidr)
            if spec is None:
                continue
            values = (spec.scope.value, spec.kind.value, spec.provider, spec.label)
            if tuple(getattr(row, name) for name in fields) == values:
                unchanged += 1
                continue
            row.scope, row.kind, row.provider, row.label = values
            row.updated_at = timezone.now()
            changed.append(row)
        removed_ids = [row.pk for cidr, row in existing.items() if cidr not in wanted]
        new = [
            ProxyRange(
                cidr=spec.cidr,
                scope=spec.scope.value,
                kind=spec.kind.value,
                provider=spec.provider,
                label=spec.label,
                source=source,
            )
            for cidr, spec in wanted.items()
            if cidr not in existing
        ]
        ProxyRange.objects.bulk_create(new, batch_size=2000)
        ProxyRange.objects.bulk_update(changed, [*fields, "updated_at"], batch_size=2000)
        for start in range(0, len(removed_ids), 5000):
            ProxyRange.objects.filter(pk__in=removed_ids[start : start + 5000]).delete()
        result = ReplaceResult(source, len(new), len(changed), len(removed_ids), unchanged)
        if new or changed or removed_ids:
            proxy_ranges_changed()
        audit.record(
            "proxy_ranges.load",
            actor=actor,
            details={
                "source": source,
                "added": result.added,
                "updated": result.updated,
                "removed": result.removed,
                "unchanged": result.unchanged,
            },
        )
    return result


def proxy_range_save(
    *, proxy_range: ProxyRange, actor: Any, request: HttpRequest | None = None
) -> ProxyRange:
    """Validate and save one range (the admin form); audits ``proxy_range.save``.

    Raises ``ValidationError`` for a malformed CIDR or a duplicate within its source.
    """
    created = proxy_range.pk is None
    with transaction.atomic():
        proxy_range.full_clean()
        proxy_range.save()
        audit.record(
            "proxy_range.save",
            actor=actor,
            request=request,
            target_type="reporting.proxyrange",
            target_id=str(proxy_range.pk),
            details={
                "created": created,
                "cidr": proxy_range.cidr,
                "scope": proxy_range.scope,
                "kind": proxy_range.kind,
                "provider": proxy_range.provider,
                "source": proxy_range.source,
                "active": proxy_range.active,
            },
        )
        proxy_ranges_changed()
    return proxy_range


def proxy_ranges_delete(
    *, ranges: QuerySet[ProxyRange], actor: Any, request: HttpRequest | None = None
) -> int:
    """Delete ``ranges``; audits ``proxy_range.delete`` with the CIDRs (not PHI)."""
    with transaction.atomic():
        cidrs = list(ranges.values_list("cidr", flat=True)[:1000])
        deleted, _ = ranges.delete()
        audit.record(
            "proxy_range.delete",
            actor=actor,
            request=request,
            details={"deleted": deleted, "cidrs": cidrs},
        )
        proxy_ranges_changed()
    return deleted


def proxy_ranges_set_active(
    *, ranges: QuerySet[ProxyRange], active: bool, actor: Any, request: HttpRequest | None = None
) -> int:
    """Switch ``ranges`` on or off (kept across reloads); audits ``proxy_range.set_active``."""
    with transaction.atomic():
        changed = ranges.exclude(active=active).update(active=active, updated_at=timezone.now())
        audit.record(
            "proxy_range.set_active",
            actor=actor,
            request=request,
            details={"active": active, "changed": changed},
        )
        proxy_ranges_changed()
    return changed


# --- webhooks: configuration --------------------------------------------------------------


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
    actor: Any,
    request: HttpRequest | None = None,
) -> IssuedSecret:
    """Create an active endpoint with a new signing secret (returned once).

    Raises :class:`WebhookConfigError`. Audits ``webhook.create``.
    """
    endpoint = WebhookEndpoint(
        name=_name(name),
        url=webhook_url_validate(url),
        event_types=webhook_event_types_validate(event_types),
        created_by=actor if getattr(actor, "pk", None) else None,
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
    actor: Any,
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
    *, endpoint: WebhookEndpoint, actor: Any, request: HttpRequest | None = None
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
    *, endpoint: WebhookEndpoint, actor: Any, request: HttpRequest | None = None
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
    *, endpoint: WebhookEndpoint, actor: Any, request: HttpRequest | None = None
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
    *, endpoint: WebhookEndpoint, actor: Any, request: HttpRequest | None = None
) -> None:
    """Delete the endpoint and its delivery log. Audits ``webhook.delete``."""
    with transaction.atomic():
        details = {**_endpoint_details(endpoint), "deliveries": endpoint.deliveries.count()}
        audit.record(
            "webhook.delete", actor=actor, request=request, target=endpoint, details=details
        )
        endpoint.delete()


# --- webhooks: emitting and delivering ----------------------------------------------------


def _enqueue_on_commit(delivery_ids: Sequence[int], countdown: int | None = None) -> None:
    if not delivery_ids:
        return
    ids = list(delivery_ids)

    def enqueue() -> None:
        from kombu.exceptions import OperationalError

        from reporting.tasks import deliver_webhook

        try:
            for delivery_id in ids:
                if countdown:
                    deliver_webhook.apply_async((delivery_id,), countdown=countdown)
                else:
                    deliver_webhook.delay(delivery_id)
        except OperationalError:
            # The broker (Redis) is down. The deliveries are committed rows: the
            # dispatch sweep enqueues them once it is back. Whoever committed them (the
            # event ingester above all) must carry on.
            logger.warning("Broker unavailable: webhook deliveries wait for the dispatch sweep")

    transaction.on_commit(enqueue)


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
        from reporting.tasks import notify_webhook_disabled

        notify_webhook_disabled.delay(endpoint_id)

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
    *, endpoint: WebhookEndpoint, actor: Any, request: HttpRequest | None = None
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
    *, delivery: WebhookDelivery, actor: Any, request: HttpRequest | None = None
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
    from django.core.mail import send_mail

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


# --- tracking events and rollups ----------------------------------------------------------


def tracking_events_ingest(*, limit: int = 2000, max_batches: int = 50) -> Any:
    """Classify and store buffered tracking events (``reporting.ingest``), then fold the
    rollup journal (``rollups.fold``).

    Idempotent and safe to run anywhere at any time: one run at a time (others return
    at once with ``busy``), each batch one transaction, an event stored at most once.
    Returns the :class:`reporting.ingest.IngestReport`.
    """
    from reporting import ingest, rollups

    report = ingest.ingest(limit=limit, max_batches=max_batches)
    # The send workers' and this run's report changes wait in the journal: fold them.
    rollups.fold()
    return report


def rollups_rebuild(*, actor: Any) -> Any:
    """Recompute per-message report rows and every rollup from raw data.

    Equal to what incremental maintenance produced (tested); send workers and the
    ingester wait while it runs. Audits ``reports.rollups_rebuild`` with the row counts.
    """
    from reporting import rollups

    result = rollups.rebuild()
    audit.record(
        "reports.rollups_rebuild",
        actor=actor,
        details={
            "messages": result.messages,
            "campaign_rows": result.campaign_rows,
            "domain_rows": result.domain_rows,
            "event_rows": result.event_rows,
        },
    )
    return result


def portal_read_record(*, message_id: int, campaign_id: int, at: datetime | None = None) -> str:
    """Record a verified recipient's read in the secure portal as a human open.

    Goes through the same durable buffer as the open pixel (the ingester labels it
    ``human`` / ``portal_verified``). Returns where the entry was buffered.
    """
    import time as time_module

    from reporting import buffer

    moment = at.timestamp() if at is not None else time_module.time()
    return buffer.append(
        {"k": "o", "m": message_id, "c": campaign_id, "t": round(moment, 6), "mt": "GET", "pv": 1}
    )


def tracking_options_set(
    *, campaign: Any, honeypot: bool, actor: Any, request: HttpRequest | None = None
) -> Any:
    """Turn the hidden honeypot link of a campaign on or off (before it starts).

    Raises :class:`TrackingOptionsError` once the campaign's links are frozen (it has
    started). Audits ``campaign.tracking_options``.
    """
    from reporting.models import TrackedLink, TrackingOptions

    with transaction.atomic():
        if (
            campaign.started_at is not None
            or TrackedLink.objects.filter(campaign=campaign).exists()
        ):
            raise TrackingOptionsError(
                "This campaign has started; its links, and the honeypot, are fixed."
            )
        options, _created = TrackingOptions.objects.select_for_update().get_or_create(
            campaign=campaign
        )
        if options.honeypot != honeypot:
            options.honeypot = honeypot
            options.save()
            audit.record(
                "campaign.tracking_options",
                actor=actor,
                request=request,
                target=campaign,
                details={"honeypot": honeypot},
            )
    return options


class TrackingOptionsError(ValueError):
    """Tracking options cannot be changed now (message says why)."""
