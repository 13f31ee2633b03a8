"""Journeys API: create, activate (with every problem when it cannot run), pause and
resume, manual enrollment, trigger events with idempotency, scopes, OpenAPI."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from drf_spectacular.drainage import GENERATOR_STATS

from campaigns.models import JourneyEnrollment, JourneyEvent, JourneyStatus
from campaigns.tests.factories import make_contacts
from campaigns.tests.journey_factories import reminder_definition
from contacts.models import Contact
from luxmail import roles
from luxmail.api import services as api_services
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db


def _bearer(admin, scopes):
    issued = api_services.api_key_create(name="ehr", scopes=scopes, actor=admin)
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {issued.secret}"
    return client


def _post(client, url, data=None, **extra):
    return client.post(url, data=json.dumps(data or {}), content_type="application/json", **extra)


def _event_journey(api, admin) -> int:
    definition = reminder_definition(
        actor=admin,
        trigger={"kind": "event", "events": ["missed_appointment"]},
        reentry={"mode": "after_days", "days": 30},
    )
    created = _post(
        api, "/api/v1/journeys/", {"name": "Missed appointment", "definition": definition}
    )
    assert created.status_code == 201, created.content
    journey_id = created.json()["id"]
    assert _post(api, f"/api/v1/journeys/{journey_id}/activate/").status_code == 200
    return journey_id


def test_create_activate_pause_resume(postgres, admin):
    api = _bearer(admin, ["journeys:write", "campaigns:read"])
    broken = _post(
        api,
        "/api/v1/journeys/",
        {
            "name": "Refill nudge",
            "definition": {"steps": [{"key": "send", "kind": "send", "next": "done"}]},
        },
    )
    assert broken.status_code == 201
    assert broken.json()["status"] == "draft"
    assert broken.json()["draft"]["problems"]
    refused = _post(api, f"/api/v1/journeys/{broken.json()['id']}/activate/")
    assert refused.status_code == 400
    problems = refused.json()["problems"]
    assert {"step": "send", "message": "Choose the template this step sends."} in problems
    assert any("does not exist" in p["message"] for p in problems)

    journey_id = _event_journey(api, admin)
    detail = api.get(f"/api/v1/journeys/{journey_id}/").json()
    assert detail["status"] == "active" and detail["current_version"]["number"] == 1
    assert [s["key"] for s in detail["steps"]] and detail["draft"] is None
    assert _post(api, f"/api/v1/journeys/{journey_id}/pause/").json()["status"] == "paused"
    assert _post(api, f"/api/v1/journeys/{journey_id}/pause/").status_code == 409
    assert _post(api, f"/api/v1/journeys/{journey_id}/resume/").json()["status"] == "active"
    actions = list(
        AuditEvent.objects.filter(action__startswith="journey.").values_list("action", flat=True)
    )
    assert {"journey.create", "journey.activate", "journey.pause", "journey.resume"} <= set(actions)


def test_events_enroll_once_per_idempotency_key(postgres, admin):
    api = _bearer(admin, ["journeys:write", "campaigns:read"])
    journey_id = _event_journey(api, admin)
    ids = make_contacts(2, prefix="ehr")
    Contact.objects.filter(pk=ids[1]).update(external_id="EHR-4711")
    url = f"/api/v1/journeys/{journey_id}/events/"
    body = {"event": "missed_appointment", "email": "ehr0@example.test", "idempotency_key": "k-1"}

    first = _post(api, url, body)
    assert first.status_code == 201, first.content
    assert first.json()["enrolled"] is True and first.json()["replay"] is False
    again = _post(api, url, body)
    assert again.status_code == 200
    assert again.json()["replay"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert JourneyEnrollment.objects.filter(journey_id=journey_id).count() == 1

    # The same key for another contact is a client bug: refused, nothing stored.
    other = _post(api, url, {**body, "email": "ehr1@example.test"})
    assert other.status_code == 409
    # A new event for a contact already in the journey is recorded, not enrolled.
    busy = _post(api, url, {**body, "idempotency_key": "k-2"})
    assert busy.status_code == 201 and busy.json()["outcome"] == "already_active"
    # By external id, with the key in the header.
    by_external = _post(
        api,
        url,
        {"event": "missed_appointment", "external_id": "EHR-4711"},
        HTTP_IDEMPOTENCY_KEY="k-3",
    )
    assert by_external.status_code == 201 and by_external.json()["enrolled"] is True
    by_uuid = _post(
        api,
        url,
        {
            "event": "missed_appointment",
            "contact_uuid": str(Contact.objects.get(pk=ids[0]).uuid),
            "idempotency_key": "k-4",
        },
    )
    assert by_uuid.json()["outcome"] == "already_active"
    assert (
        _post(api, url, {**body, "event": "form_completed", "idempotency_key": "k-5"}).status_code
        == 409
    )
    assert (
        _post(
            api, url, {**body, "email": "nobody@example.test", "idempotency_key": "k-6"}
        ).status_code
        == 404
    )
    assert (
        _post(api, url, {"event": "missed_appointment", "email": "ehr0@example.test"}).status_code
        == 400
    )
    assert JourneyEnrollment.objects.filter(journey_id=journey_id).count() == 2
    assert JourneyEvent.objects.filter(journey_id=journey_id).count() == 4
    # Stored keys are hashes; audit details hold ids and codes, never the address or key.
    assert not JourneyEvent.objects.filter(key_hash__in=["k-1", "k-2"]).exists()
    for event in AuditEvent.objects.filter(action="journey.event"):
        text = json.dumps(event.details)
        assert "ehr0@" not in text and "k-1" not in text


def test_manual_enrollment_through_the_api(postgres, admin):
    api = _bearer(admin, ["journeys:write", "campaigns:read"])
    journey_id = _event_journey(api, admin)
    contact = Contact.objects.get(pk=make_contacts(1, prefix="man")[0])
    url = f"/api/v1/journeys/{journey_id}/enrollments/"
    created = _post(api, url, {"contact_uuid": str(contact.uuid)})
    assert created.status_code == 201
    assert created.json()["state"] == "active" and created.json()["step"] == "reminder"
    assert _post(api, url, {"contact_uuid": str(contact.uuid)}).json()["code"] == "already_active"
    listed = api.get(url).json()
    assert [row["contact_uuid"] for row in listed] == [str(contact.uuid)]


def test_scopes_and_phi(postgres, admin):
    reader = _bearer(admin, ["campaigns:read"])
    assert _post(reader, "/api/v1/journeys/", {"name": "x"}).status_code == 403
    assert reader.get("/api/v1/journeys/").status_code == 200
    writer = _bearer(admin, ["journeys:write"])
    phi_definition = {
        "trigger": {"kind": "date", "field": "next_appointment", "offset_days": -7},
        "steps": [{"key": "done", "kind": "exit"}],
    }
    refused = _post(writer, "/api/v1/journeys/", {"name": "Appt", "definition": phi_definition})
    assert refused.status_code == 403 and "PHI" in refused.json()["detail"]
    phi_writer = _bearer(admin, ["journeys:write", "phi:write"])
    created = _post(phi_writer, "/api/v1/journeys/", {"name": "Appt", "definition": phi_definition})
    assert created.status_code == 201
    journey_id = created.json()["id"]
    assert _post(phi_writer, f"/api/v1/journeys/{journey_id}/activate/").json()["status"] == (
        JourneyStatus.ACTIVE
    )


def test_openapi_documents_journeys_without_warnings(staff_client):
    GENERATOR_STATS.reset()
    response = staff_client(roles.ADMIN).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    for path in [
        "/api/v1/journeys/",
        "/api/v1/journeys/{id}/",
        "/api/v1/journeys/{id}/definition/",
        "/api/v1/journeys/{id}/activate/",
        "/api/v1/journeys/{id}/pause/",
        "/api/v1/journeys/{id}/resume/",
        "/api/v1/journeys/{id}/enrollments/",
        "/api/v1/journeys/{id}/events/",
    ]:
        assert path in schema["paths"], path
    ours = [
        message
        for message in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
        if "journey" in message.lower()
    ]
    assert ours == []
