"""Webhook management API: scopes, CRUD, test events, the delivery log, redelivery."""

from __future__ import annotations

import pytest
from django.test import Client

from luxmail.api import services as api_services
from luxmail.models import AuditEvent
from reporting import webhooks
from reporting.models import WebhookDelivery, WebhookEndpoint

BASE = "/api/v1/webhooks"


@pytest.fixture
def api(db, make_user):
    """A client authenticated with an API key holding ``webhooks:manage``."""
    admin = make_user("Admin")
    issued = api_services.api_key_create(name="Ops", scopes=["webhooks:manage"], actor=admin)
    return Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")


def create(api, url, **extra):
    body = {"name": "CRM", "url": url, "event_types": ["opened", "clicked"], **extra}
    return api.post(f"{BASE}/endpoints/", body, content_type="application/json")


def test_create_returns_the_secret_once(api, recording_server):
    response = create(api, recording_server.url + "/hook")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith(webhooks.SECRET_PREFIX)
    assert created["event_types"] == ["clicked", "opened"] and created["active"] is True
    detail = api.get(f"{BASE}/endpoints/{created['id']}/").json()
    listing = api.get(f"{BASE}/endpoints/").json()
    assert "secret" not in detail and "secret" not in listing["results"][0]
    assert listing["results"][0]["id"] == created["id"]
    assert AuditEvent.objects.get(action="webhook.create").actor_label.startswith("api-key:")


def test_invalid_input_is_explained(api):
    bad_type = create(api, "https://hooks.example.org/", event_types=["viewed"])
    assert bad_type.status_code == 400
    assert [e["field"] for e in bad_type.json()["errors"]] == ["event_types[0]"]
    bad_url = create(api, "https://u:p@hooks.example.org/")
    assert bad_url.status_code == 400 and "credentials" in bad_url.json()["detail"]
    assert not WebhookEndpoint.objects.exists()


def test_update_disable_enable_and_delete(api, recording_server):
    endpoint_id = create(api, recording_server.url + "/hook").json()["id"]
    url = f"{BASE}/endpoints/{endpoint_id}/"
    changed = api.patch(
        url, {"name": "EHR", "event_types": ["bounced"]}, content_type="application/json"
    )
    assert changed.status_code == 200
    assert changed.json()["name"] == "EHR" and changed.json()["event_types"] == ["bounced"]
    off = api.patch(url, {"active": False}, content_type="application/json").json()
    assert off["active"] is False and off["disabled_reason"] == "admin"
    on = api.patch(url, {"active": True}, content_type="application/json").json()
    assert on["active"] is True and on["disabled_reason"] == ""
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"webhook.update", "webhook.disable", "webhook.enable", "webhook.delete"} <= actions


def test_test_event_rotation_log_and_redelivery(api, recording_server):
    created = create(api, recording_server.url + "/hook").json()
    endpoint_url = f"{BASE}/endpoints/{created['id']}"
    test = api.post(f"{endpoint_url}/test/").json()
    assert test["status"] == "succeeded" and test["event_type"] == "test"
    header = recording_server.requests[0].headers["X-LuxMail-Signature"]
    assert webhooks.verify(created["secret"], header, recording_server.requests[0].body)

    rotated = api.post(f"{endpoint_url}/rotate-secret/").json()
    assert rotated["secret"] != created["secret"]

    recording_server.answer(500)
    failed = api.post(f"{endpoint_url}/test/").json()
    assert failed["status"] == "failed" and failed["response_code"] == 500

    log = api.get(f"{endpoint_url}/deliveries/").json()["results"]
    assert [d["status"] for d in log] == ["failed", "succeeded"]
    only_failed = api.get(f"{endpoint_url}/deliveries/", {"status": "failed"}).json()["results"]
    assert [d["id"] for d in only_failed] == [failed["id"]]
    assert api.get(f"{endpoint_url}/deliveries/", {"status": "nope"}).status_code == 400

    # A real (non-test) failed delivery can be redelivered, as a new log row.
    endpoint = WebhookEndpoint.objects.get()
    original = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_type="clicked",
        event_id="evt_1",
        payload={"id": "evt_1"},
        status=WebhookDelivery.Status.FAILED,
        attempts=10,
    )
    again = api.post(f"{BASE}/deliveries/{original.uuid}/redeliver/")
    assert again.status_code == 202 and again.json()["event_id"] == "evt_1"
    assert WebhookDelivery.objects.filter(event_id="evt_1").count() == 2


def test_event_types_listing(api):
    assert "portal_reply" in api.get(f"{BASE}/event-types/").json()["event_types"]


def test_scope_is_required(db, make_user):
    admin = make_user("Admin")
    reader = api_services.api_key_create(name="Reports", scopes=["reports:read"], actor=admin)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {reader.secret}")
    response = client.get(f"{BASE}/endpoints/")
    assert response.status_code == 403 and "webhooks:manage" in response.json()["detail"]
    assert Client().get(f"{BASE}/endpoints/").status_code in (401, 403)


def test_staff_sessions_need_the_settings_permission(staff_client):
    assert staff_client("Admin").get(f"{BASE}/endpoints/").status_code == 200
    assert staff_client("Marketer").get(f"{BASE}/endpoints/").status_code == 403
