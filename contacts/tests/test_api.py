"""Contacts API: PHI only with phi:read / phi:write, every PHI read audited, OpenAPI clean."""

import json

import pytest
from django.test import Client
from drf_spectacular.drainage import GENERATOR_STATS

from contacts import services
from contacts.models import Contact, Suppression
from luxmail import roles
from luxmail.api import services as api_services
from luxmail.models import AuditEvent

pytestmark = [pytest.mark.django_db]

PATIENT = {
    "email": "Maria.Lopez@example.org",
    "first_name": "Maria",
    "last_name": "Lopez",
    "birth_date": "1961-04-02",
    "conditions": ["e11.9", "I10"],
    "zip_code": "02139",
}


@pytest.fixture
def patient(admin):
    return services.contact_create(data=PATIENT, actor=admin)


def _bearer(admin, scopes):
    issued = api_services.api_key_create(name="integration", scopes=scopes, actor=admin)
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {issued.secret}"
    return client


def _post(client, url, data, method="post"):
    return getattr(client, method)(url, data=json.dumps(data), content_type="application/json")


@pytest.mark.parametrize("role", [roles.MARKETER, roles.VIEWER])
def test_marketer_and_viewer_see_masked_identity_and_no_profile(staff_client, patient, role):
    client = staff_client(role)
    body = client.get("/api/v1/contacts/").json()
    row = body["results"][0]
    assert (row["email"], row["first_name"], row["last_name"]) == (
        "m***@example.org",
        "M***",
        "L***",
    )
    assert row["profile"] is None and row["phi_visible"] is False
    assert "Maria" not in json.dumps(body) and "E11.9" not in json.dumps(body)
    assert not AuditEvent.objects.filter(action="contact.view_phi").exists()
    detail = client.get(f"/api/v1/contacts/{patient.pk}/").json()
    assert detail["email"] == "m***@example.org"


def test_phi_marketer_sees_phi_and_each_read_is_audited(staff_client, patient):
    client = staff_client(roles.PHI_MARKETER)
    row = client.get("/api/v1/contacts/").json()["results"][0]
    assert row["email"] == "maria.lopez@example.org"
    assert row["profile"]["conditions"] == ["E11.9", "I10"]
    assert row["profile"]["birth_date"] == "1961-04-02"
    client.get(f"/api/v1/contacts/{patient.pk}/")
    events = AuditEvent.objects.filter(action="contact.view_phi").order_by("id")
    assert events.count() == 2
    assert events.last().actor_id == client.user.pk
    assert events.last().target_id == str(patient.uuid)
    # Audit details carry ids and counts, never values.
    assert "Maria" not in json.dumps(list(events.values_list("details", flat=True)))


def test_viewer_cannot_write_contacts(staff_client, patient):
    viewer = staff_client(roles.VIEWER)
    response = _post(viewer, f"/api/v1/contacts/{patient.pk}/", {"first_name": "Mara"}, "patch")
    assert response.status_code == 403


def test_phi_fields_need_phi_write(staff_client, patient):
    marketer = staff_client(roles.MARKETER)
    response = _post(
        marketer, f"/api/v1/contacts/{patient.pk}/", {"birth_date": "1970-01-01"}, "patch"
    )
    assert response.status_code == 403
    assert "phi:write" in response.json()["detail"]
    ok = _post(marketer, f"/api/v1/contacts/{patient.pk}/", {"first_name": "Mara"}, "patch")
    assert ok.status_code == 200 and ok.json()["first_name"] == "M***"
    phi = staff_client(roles.PHI_MARKETER)
    ok = _post(phi, f"/api/v1/contacts/{patient.pk}/", {"birth_date": "1970-01-01"}, "patch")
    assert ok.status_code == 200 and ok.json()["profile"]["birth_date"] == "1970-01-01"


def test_api_key_scopes(admin, patient):
    masked = _bearer(admin, ["contacts:read"])
    assert masked.get("/api/v1/contacts/").json()["results"][0]["profile"] is None
    clear = _bearer(admin, ["contacts:read", "phi:read"])
    assert clear.get("/api/v1/contacts/").json()["results"][0]["first_name"] == "Maria"
    assert masked.post("/api/v1/contacts/", {}).status_code == 403


def test_create_upsert_validation_and_conflict(admin):
    client = _bearer(admin, ["contacts:read", "contacts:write", "phi:write"])
    created = _post(client, "/api/v1/contacts/upsert/", PATIENT)
    assert created.status_code == 201
    again = _post(client, "/api/v1/contacts/upsert/", {**PATIENT, "zip_code": "02140"})
    assert again.status_code == 200
    assert Contact.objects.count() == 1
    conflict = _post(client, "/api/v1/contacts/", {"email": "maria.lopez@EXAMPLE.org"})
    assert conflict.status_code == 409
    bad = _post(client, "/api/v1/contacts/", {"email": "x@example.org", "conditions": ["sugar"]})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "conditions"
    lookup = client.get("/api/v1/contacts/", {"email": "MARIA.LOPEZ@example.org"}).json()
    assert len(lookup["results"]) == 1
    assert "next" in lookup and "previous" in lookup  # cursor pagination


def test_consent_and_suppression_endpoints(staff_client, admin, patient):
    marketer = staff_client(roles.MARKETER)
    granted = _post(
        marketer,
        f"/api/v1/contacts/{patient.pk}/consents/",
        {"purpose": "phi_marketing", "source": "paper", "evidence_ref": "form-77"},
    )
    assert granted.status_code == 201 and granted.json()["present"] is True
    revoked = _post(
        marketer, f"/api/v1/contacts/{patient.pk}/consents/revoke/", {"purpose": "phi_marketing"}
    )
    assert revoked.json() == {"revoked": 1}
    history = marketer.get(f"/api/v1/contacts/{patient.pk}/consents/").json()["results"]
    assert len(history) == 1 and history[0]["present"] is False
    denied = _post(marketer, "/api/v1/suppressions/", {"contact": patient.pk, "reason": "manual"})
    assert denied.status_code == 403
    boss = staff_client(roles.ADMIN)
    added = _post(boss, "/api/v1/suppressions/", {"email": PATIENT["email"], "reason": "manual"})
    assert added.status_code == 201
    row = Suppression.objects.get()
    removed = _post(boss, f"/api/v1/suppressions/{row.pk}/remove/", {"note": ""})
    assert removed.status_code == 400
    removed = _post(boss, f"/api/v1/suppressions/{row.pk}/remove/", {"note": "requested"})
    assert removed.status_code == 200 and removed.json()["removed_at"]


def test_lists_and_segments(staff_client, patient):
    client = staff_client(roles.MARKETER)
    created = _post(client, "/api/v1/lists/", {"name": "Spring event"})
    list_id = created.json()["id"]
    assert _post(
        client, f"/api/v1/lists/{list_id}/members/", {"contact_ids": [patient.pk]}
    ).json() == {"added": 1}
    rules = {
        "all": [
            {"field": "condition", "op": "eq", "value": "E11"},
            {"field": "age", "op": "gte", "value": 50},
            {"field": "list", "op": "eq", "value": list_id},
        ]
    }
    segment = _post(client, "/api/v1/segments/", {"name": "Diabetics 50+", "rules": rules})
    assert segment.status_code == 201
    seg_id = segment.json()["id"]
    counted = client.post(f"/api/v1/segments/{seg_id}/count")
    assert counted.json() == {"segment": seg_id, "count": 1}
    event = AuditEvent.objects.filter(action="segment.count").latest("id")
    assert event.details == {"segment": seg_id, "count": 1}
    bad = _post(
        client,
        "/api/v1/segments/",
        {"name": "Bad", "rules": {"all": [{"field": "age", "op": "gte", "value": 500}]}},
    )
    assert bad.status_code == 400
    assert bad.json()["errors"] == [
        {"path": "all[0]", "message": "Age: an age must be between 0 and 130"}
    ]
    fields = client.get("/api/v1/segments/fields/").json()["fields"]
    assert {"condition", "age", "zip3", "consent", "list"} <= {f["field"] for f in fields}
    members = client.get("/api/v1/contacts/", {"segment": seg_id}).json()["results"]
    assert [m["id"] for m in members] == [patient.pk]


def test_openapi_documents_contacts_without_warnings(staff_client):
    GENERATOR_STATS.reset()
    response = staff_client(roles.ADMIN).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    for path in [
        "/api/v1/contacts/",
        "/api/v1/contacts/{id}/",
        "/api/v1/contacts/upsert/",
        "/api/v1/contacts/{id}/consents/",
        "/api/v1/suppressions/",
        "/api/v1/lists/{id}/members/",
        "/api/v1/segments/{id}/count",
    ]:
        assert path in schema["paths"], path
    ours = [
        message
        for message in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
        if "contacts" in message
    ]
    assert ours == []
