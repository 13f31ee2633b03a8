"""Outbound webhooks over real HTTP: signatures, retries, disabling, no PHI.

Deliveries run through Celery in eager mode (tasks execute inline when the
transaction commits); a local ``http.server`` plays the receiver.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from faker import Faker

from luxmail.models import AuditEvent
from luxmail.testing import free_port
from reporting import services, webhooks
from reporting.classification import Label, Verdict
from reporting.models import WebhookDelivery, WebhookEndpoint
from reporting.services import webhook_delivery
from reporting.tasks import dispatch_due_webhooks

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def documented_verifier():
    """The verification snippet exactly as printed in docs/api.md."""
    text = (ROOT / "docs" / "api.md").read_text()
    section = text.split("### Verifying signatures", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/api.md", "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["verify_luxmail_signature"]


def payload(event_type="clicked", **overrides):
    values = {
        "event_type": event_type,
        "message_id": 918273,
        "campaign_id": 42,
        "campaign_marketing_id": "FLU-2026-Q4",
        "contact_external_id": "CRM-0042137",
        "event_time": timezone.now(),
        "classification": Verdict(Label.HUMAN, "no_automation_signal"),
    }
    values.update(overrides)
    return webhooks.build_payload(**values)


@pytest.fixture
def admin(make_user):
    return make_user("Admin")


@pytest.fixture
def hook(db, admin, recording_server):
    """An endpoint subscribed to opened and clicked, pointing at the recording server."""
    return services.webhook_endpoint_create(
        name="CRM",
        url=recording_server.url + "/hook",
        event_types=["opened", "clicked"],
        actor=admin,
    )


@pytest.fixture
def emit(django_capture_on_commit_callbacks):
    def run(event_type="clicked", **overrides):
        with django_capture_on_commit_callbacks(execute=True):
            return services.webhook_emit(
                event_type=event_type, payload=payload(event_type, **overrides)
            )

    return run


@pytest.fixture
def dispatch(django_capture_on_commit_callbacks):
    def run():
        with django_capture_on_commit_callbacks(execute=True):
            dispatch_due_webhooks.delay()

    return run


# --- signatures -----------------------------------------------------------------------------


def test_documented_recipe_verifies_a_real_delivery(hook, recording_server, emit):
    assert emit() == 1
    [received] = recording_server.requests
    verify = documented_verifier()
    header = received.headers["X-LuxMail-Signature"]
    assert verify(hook.secret, header, received.body)
    assert webhooks.verify(hook.secret, header, received.body)
    # Tampering, a wrong secret or a replay later than five minutes all fail.
    assert not verify(hook.secret, header, received.body.replace(b"918273", b"918274"))
    assert not verify("whsec_wrong", header, received.body)
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=6)):
        assert not verify(hook.secret, header, received.body)
    assert not verify(hook.secret, "v1=" + "0" * 64, received.body)


def test_delivery_request_carries_the_documented_headers_and_payload(hook, recording_server, emit):
    emit("opened", classification=Verdict(Label.AUTOMATED, "apple_mpp", device_unknown=True))
    [received] = recording_server.requests
    delivery = WebhookDelivery.objects.get()
    assert received.method == "POST" and received.path == "/hook"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-LuxMail-Event"] == "opened"
    assert received.headers["X-LuxMail-Delivery"] == str(delivery.uuid)
    assert received.headers["X-LuxMail-Attempt"] == "1"
    body = json.loads(received.body)
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["id"] == received.headers["X-LuxMail-Event-Id"] == delivery.event_id
    assert body["data"] == {
        "message_id": 918273,
        "campaign_id": 42,
        "campaign_marketing_id": "FLU-2026-Q4",
        "contact_external_id": "CRM-0042137",
        "event_time": body["data"]["event_time"],
        "classification": {
            "label": "automated",
            "reason": "apple_mpp",
            "automation_kind": "",
            "ruleset_version": body["data"]["classification"]["ruleset_version"],
            "device_unknown": True,
        },
    }
    assert body["data"]["event_time"].endswith("Z")
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("succeeded", 200, 1)


def test_rotation_signs_with_both_secrets_for_a_day(hook, admin, recording_server, emit):
    rotated = services.webhook_endpoint_rotate_secret(endpoint=hook.endpoint, actor=admin)
    assert rotated.secret != hook.secret
    emit()
    header = recording_server.requests[-1].headers["X-LuxMail-Signature"]
    body = recording_server.requests[-1].body
    assert header.count("v1=") == 2
    verify = documented_verifier()
    assert verify(hook.secret, header, body) and verify(rotated.secret, header, body)
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=25), tick=False):
        emit()
        header = recording_server.requests[-1].headers["X-LuxMail-Signature"]
        body = recording_server.requests[-1].body
        assert header.count("v1=") == 1
        assert verify(rotated.secret, header, body) and not verify(hook.secret, header, body)
    assert AuditEvent.objects.filter(action="webhook.rotate_secret").exists()


# --- subscriptions ---------------------------------------------------------------------------


def test_only_active_subscribed_endpoints_get_the_event(hook, admin, recording_server, emit):
    clicks = services.webhook_endpoint_create(
        name="Clicks only",
        url=recording_server.url + "/clicks",
        event_types=["clicked"],
        actor=admin,
    )
    paused = services.webhook_endpoint_create(
        name="Paused", url=recording_server.url + "/paused", event_types=["opened"], actor=admin
    )
    services.webhook_endpoint_disable(endpoint=paused.endpoint, actor=admin)
    assert emit("opened") == 1
    assert [r.path for r in recording_server.requests] == ["/hook"]
    assert emit("clicked") == 2
    assert sorted(r.path for r in recording_server.requests[1:]) == ["/clicks", "/hook"]
    assert emit("bounced") == 0
    assert not WebhookDelivery.objects.filter(endpoint=paused.endpoint).exists()
    assert clicks.endpoint.deliveries.count() == 1


def test_emit_refuses_unknown_types_and_foreign_payloads(hook):
    with pytest.raises(ValueError, match="Unknown webhook event type"):
        services.webhook_emit(event_type="viewed", payload=payload())
    with pytest.raises(ValueError, match="another event type"):
        services.webhook_emit(event_type="opened", payload=payload("clicked"))
    assert not WebhookDelivery.objects.exists()


# --- no PHI -----------------------------------------------------------------------------------


def test_payloads_contain_no_phi(hook, recording_server, emit):
    fake = Faker()
    phi = {
        "name": fake.name(),
        "email": fake.email(),
        "birth_date": fake.date_of_birth().isoformat(),
        "phone": fake.phone_number(),
        "diagnosis": "Type 2 diabetes mellitus",
        "address": fake.street_address(),
    }
    emit()
    body = recording_server.requests[0].body
    stored = json.dumps(WebhookDelivery.objects.get().payload)
    audit = json.dumps(list(AuditEvent.objects.values_list("details", flat=True)))
    for value in phi.values():
        for text in (body.decode(), stored, audit):
            assert value not in text
    document = json.loads(body)
    assert set(document) == webhooks.PAYLOAD_KEYS
    assert set(document["data"]) <= webhooks.DATA_KEYS
    assert set(document["data"]["classification"]) == (
        webhooks.CLASSIFICATION_KEYS | webhooks.OPTIONAL_CLASSIFICATION_KEYS
    )
    # The builder only takes identifiers: an e-mail address or free text is refused...
    with pytest.raises(webhooks.WebhookPayloadError):
        payload(contact_external_id=phi["email"])
    with pytest.raises(webhooks.WebhookPayloadError):
        payload(campaign_marketing_id="Patient: " + phi["name"] + "\n" + phi["diagnosis"])
    # ...and nothing can be added after building it.
    smuggled = payload()
    smuggled["data"]["email"] = phi["email"]
    with pytest.raises(webhooks.WebhookPayloadError):
        services.webhook_emit(event_type="clicked", payload=smuggled)
    smuggled = payload()
    smuggled["contact"] = {"name": phi["name"]}
    with pytest.raises(webhooks.WebhookPayloadError):
        services.webhook_emit(event_type="clicked", payload=smuggled)


def test_failure_log_never_stores_the_receivers_answer(hook, recording_server, emit):
    recording_server.answer(500)
    emit()
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error == "HTTP 500 Internal Server Error"
    assert "receiver may say" not in delivery.last_error


# --- retries and disabling --------------------------------------------------------------------


def test_failing_endpoint_is_retried_with_backoff_then_disabled(
    hook, admin, recording_server, emit, dispatch, staff_client
):
    recording_server.default_status = 503
    with time_machine.travel(START, tick=False) as clock:
        emit()
        delivery = WebhookDelivery.objects.get()
        gaps = []
        while delivery.status == WebhookDelivery.Status.RETRYING:
            gaps.append((delivery.next_attempt_at - timezone.now()).total_seconds())
            # Nothing happens before the retry is due, even if the sweep runs.
            dispatch()
            delivery.refresh_from_db()
            assert delivery.attempts == len(gaps)
            clock.move_to(
                delivery.next_attempt_at
                + timedelta(seconds=services.POLICY.dispatch_grace_seconds + 1)
            )
            dispatch()
            delivery.refresh_from_db()

    assert gaps == [30, 60, 120, 240, 480, 960, 1920, 3840, 7680]
    assert (delivery.status, delivery.attempts) == ("failed", 10)
    assert delivery.last_error == "HTTP 503 Service Unavailable"
    assert len(recording_server.requests) == 10
    assert [r.headers["X-LuxMail-Attempt"] for r in recording_server.requests] == [
        str(n) for n in range(1, 11)
    ]

    endpoint = WebhookEndpoint.objects.get()
    assert not endpoint.active and endpoint.disabled_reason == "failures"
    assert endpoint.consecutive_failures == 10
    disabled = AuditEvent.objects.get(action="webhook.disabled")
    assert disabled.details["endpoint"] == str(endpoint.uuid)
    assert disabled.details["last_response_code"] == 503

    # Admins are told: an e-mail through the relay, and a notice on the dashboard.
    [notice] = mail.outbox
    assert admin.email in notice.to and "'CRM' was disabled" in notice.subject
    assert str(endpoint.uuid) in notice.body
    page = staff_client("Admin").get(reverse("dashboard")).content.decode()
    assert "switched off after repeated delivery failures" in page and "CRM" in page
    marketer_page = staff_client("Marketer").get(reverse("dashboard")).content.decode()
    assert "switched off" not in marketer_page

    # While disabled nothing new is queued for it.
    assert emit() == 0


def test_retry_then_success_resets_the_failure_count(hook, recording_server, emit, dispatch):
    recording_server.answer(500, 502)
    with time_machine.travel(START, tick=False) as clock:
        emit()
        for _ in range(2):
            delivery = WebhookDelivery.objects.get()
            clock.move_to(delivery.next_attempt_at + timedelta(seconds=31))
            dispatch()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 3, 200)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.active and endpoint.consecutive_failures == 0 and endpoint.failing_since is None
    assert endpoint.last_success_at is not None


def test_a_short_outage_at_volume_does_not_disable(hook, recording_server, emit, dispatch):
    recording_server.default_status = 500
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(15):
            emit()
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.consecutive_failures == 15 and endpoint.active
        recording_server.default_status = 200
        clock.move_to(START + timedelta(minutes=2))
        dispatch()
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 15
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.consecutive_failures == 0


def test_enabling_resumes_waiting_deliveries(
    hook, admin, recording_server, emit, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(
        webhook_delivery,  # where the delivery code reads it
        "POLICY",
        replace(services.POLICY, disable_after_failures=2, disable_after_seconds=0),
    )
    recording_server.default_status = 500
    emit()
    emit()
    endpoint = WebhookEndpoint.objects.get()
    assert not endpoint.active and endpoint.disabled_reason == "failures"
    assert WebhookDelivery.objects.filter(status="retrying").count() == 2
    recording_server.default_status = 200
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_endpoint_enable(endpoint=endpoint, actor=admin)
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 2
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.disabled_at is None and endpoint.consecutive_failures == 0
    assert AuditEvent.objects.filter(action="webhook.enable").exists()


def test_redirects_are_failures_and_not_followed(hook, recording_server, emit):
    recording_server.answer(302)
    emit()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_code) == ("retrying", 302)
    assert delivery.last_error == "HTTP 302 Found"
    assert len(recording_server.requests) == 1


def test_unreachable_and_slow_receivers_are_failures(
    db, admin, recording_server, emit, monkeypatch
):
    services.webhook_endpoint_create(
        name="Nobody home",
        url=f"http://127.0.0.1:{free_port()}/",
        event_types=["clicked"],
        actor=admin,
    )
    emit()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "retrying" and delivery.response_code is None
    assert delivery.last_error.startswith("Connection failed")

    # The delivery code reads its module's POLICY (reporting/services/webhook_delivery.py).
    monkeypatch.setattr(webhook_delivery, "POLICY", replace(services.POLICY, timeout_seconds=0.5))
    WebhookEndpoint.objects.all().delete()
    services.webhook_endpoint_create(
        name="Slow", url=recording_server.url + "/slow", event_types=["clicked"], actor=admin
    )
    recording_server.delay_seconds = 2
    emit()
    slow = WebhookDelivery.objects.get()
    assert slow.status == "retrying" and slow.last_error == "No response within 0.5 s"


def test_attempts_are_idempotent(hook, recording_server, emit):
    emit()
    delivery = WebhookDelivery.objects.get()
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk, force=True) is None
    assert len(recording_server.requests) == 1


def test_sweep_delivers_what_lost_its_task_and_what_a_dead_worker_held(
    hook, recording_server, dispatch
):
    with time_machine.travel(START, tick=False) as clock:
        # Queued, but the broker lost the task (on_commit callbacks never ran).
        services.webhook_emit(event_type="clicked", payload=payload())
        lost = WebhookDelivery.objects.get()
        dispatch()  # within the grace period its own task is still expected
        assert recording_server.requests == []
        # Another delivery whose worker died mid-send: the lease runs out.
        crashed = WebhookDelivery.objects.create(
            endpoint=hook.endpoint,
            event_type="clicked",
            event_id="evt_crashed",
            payload=payload(event_id="evt_crashed"),
            status=WebhookDelivery.Status.SENDING,
            attempts=1,
            locked_until=START + timedelta(seconds=70),
            next_attempt_at=START,
        )
        clock.move_to(START + timedelta(seconds=71))
        dispatch()
    lost.refresh_from_db()
    crashed.refresh_from_db()
    assert lost.status == crashed.status == "succeeded"
    assert crashed.attempts == 2
    assert len(recording_server.requests) == 2


# --- test events and redelivery ---------------------------------------------------------------


def test_send_test_event_reports_the_result_without_counting_failures(
    hook, admin, recording_server
):
    delivery = services.webhook_send_test(endpoint=hook.endpoint, actor=admin)
    assert delivery.status == "succeeded" and delivery.event_type == "test"
    body = json.loads(recording_server.requests[0].body)
    assert body["type"] == "test" and body["data"]["test"] is True
    assert documented_verifier()(
        hook.secret,
        recording_server.requests[0].headers["X-LuxMail-Signature"],
        recording_server.requests[0].body,
    )
    recording_server.answer(404)
    failed = services.webhook_send_test(endpoint=hook.endpoint, actor=admin)
    assert (failed.status, failed.attempts, failed.last_error) == (
        "failed",
        1,
        "HTTP 404 Not Found",
    )
    hook.endpoint.refresh_from_db()
    assert hook.endpoint.consecutive_failures == 0
    assert AuditEvent.objects.filter(action="webhook.test").count() == 2


def test_redeliver_sends_the_same_event_again(
    hook, admin, recording_server, emit, django_capture_on_commit_callbacks
):
    emit()
    original = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        copy = services.webhook_delivery_redeliver(delivery=original, actor=admin)
    copy.refresh_from_db()
    assert copy.pk != original.pk and copy.event_id == original.event_id
    assert copy.status == "succeeded"
    first, second = (json.loads(r.body) for r in recording_server.requests)
    assert first == second


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/hook", "full URL"),
        ("hooks.example.org", "full URL"),
        ("https://user:pass@hooks.example.org/", "credentials"),
    ],
)
def test_bad_urls_are_refused(db, admin, url, message):
    with pytest.raises(services.WebhookConfigError, match=message):
        services.webhook_endpoint_create(name="x", url=url, event_types=["sent"], actor=admin)


def test_production_requires_https(db, admin, settings):
    settings.PRODUCTION = True
    with pytest.raises(services.WebhookConfigError, match="https"):
        services.webhook_url_validate("http://hooks.example.org/luxmail")
    assert services.webhook_url_validate(" https://hooks.example.org/luxmail ") == (
        "https://hooks.example.org/luxmail"
    )


def test_event_types_are_checked(db, admin):
    with pytest.raises(services.WebhookConfigError, match="at least one"):
        services.webhook_endpoint_create(
            name="x", url="https://a.example/", event_types=[], actor=admin
        )
    with pytest.raises(services.WebhookConfigError, match="Unknown event type"):
        services.webhook_endpoint_create(
            name="x", url="https://a.example/", event_types=["test"], actor=admin
        )


def test_secret_is_encrypted_at_rest(hook):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM reporting_webhookendpoint")
        [(stored,)] = cursor.fetchall()
    assert hook.secret.encode() not in bytes(stored)
    created = AuditEvent.objects.get(action="webhook.create")
    assert hook.secret not in json.dumps(created.details)


def test_an_endpoint_deleted_while_sending_is_not_an_error(hook, admin):
    delivery = WebhookDelivery.objects.create(
        endpoint=hook.endpoint,
        event_type="clicked",
        event_id="evt_gone",
        payload=payload(event_id="evt_gone"),
        next_attempt_at=timezone.now(),
    )
    claim = services._claim(delivery.pk, timezone.now())
    assert claim is not None
    services.webhook_endpoint_delete(endpoint=hook.endpoint, actor=admin)
    assert services._record(claim, webhooks.PostResult(True, 200, ""), timezone.now()) is None
    assert AuditEvent.objects.get(action="webhook.delete").details["deliveries"] == 1
