"""``POST /api/v1/messages/``: one message through the same channel choice and pipeline."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import Campaign, Message
from campaigns.sending import delivery
from campaigns.tests.factories import make_sender
from contacts import services as contact_services
from luxmail.api.services import api_key_create
from luxmail.models import AuditEvent
from portal.models import PortalMessage
from portal.tests.helpers import PHI_HTML, PHI_SUBJECT, contains_any, make_patient, phi_values

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


def client_with(scopes, admin) -> APIClient:
    issued = api_key_create(name="ehr", scopes=scopes, actor=admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


def patient_with_transactional_consent(admin, address=None):
    patient = make_patient(address or f"t.{uuid.uuid4().hex[:8]}@example.test", actor=admin)
    contact_services.consent_grant(
        contact=patient, purpose="transactional", source="ehr", actor=admin
    )
    return patient


def run(message_id: int) -> Message:
    message = Message.objects.select_related("campaign").get(pk=message_id)
    delivery.send_batch(campaign_id=message.campaign_id)
    services.campaign_finish_if_done(campaign_id=message.campaign_id)
    message.refresh_from_db()
    return message


def test_template_message_to_a_contact_goes_to_the_portal_and_reports_status(postgres, sink, admin):
    patient = patient_with_transactional_consent(admin)
    sender = make_sender(admin)
    template = services.template_create(
        name=f"Reminder {uuid.uuid4().hex[:6]}", subject=PHI_SUBJECT, html=PHI_HTML, actor=admin
    )
    client = client_with(["campaigns:send", "campaigns:read"], admin)
    response = client.post(
        "/api/v1/messages/",
        {
            "contact": str(patient.uuid),
            "sender": sender.pk,
            "template": template.pk,
            "secure_policy": "portal_only",
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "queued" and body["transactional"] is True
    assert contains_any(response.content, phi_values(patient)) == []

    message = run(body["id"])
    assert (message.state, message.channel) == ("sent", "portal")
    [notice] = sink.messages
    assert contains_any(notice.data, phi_values(patient)) == []

    status = client.get(f"/api/v1/messages/{message.pk}/").json()
    assert status["state"] == "sent" and status["channel"] == "portal"
    assert status["portal"]["state"] == "active" and status["portal"]["replies"] == 0
    assert PortalMessage.objects.filter(message=message).exists()
    assert Campaign.objects.get(pk=message.campaign_id).transactional
    assert AuditEvent.objects.filter(action="message.send").exists()


def test_raw_content_by_email_needs_write_scope_and_delivers(postgres, sink, admin):
    patient = patient_with_transactional_consent(admin, "raw.patient@example.test")
    sender = make_sender(admin)
    payload = {
        "email": "Raw.Patient@example.test",
        "sender": sender.pk,
        "subject": "Reminder",
        "html": "<p>Hello {{ contact.first_name }}, see you soon.</p>",
        "secure_policy": "opportunistic",
    }
    refused = client_with(["campaigns:send"], admin).post(
        "/api/v1/messages/", payload, format="json"
    )
    assert refused.status_code == 403
    client = client_with(["campaigns:send", "campaigns:write"], admin)
    response = client.post("/api/v1/messages/", payload, format="json")
    assert response.status_code == 202, response.content
    message = run(response.json()["id"])
    assert message.state == "sent" and message.channel == "plaintext-dev"
    assert b"Hello Rosalind" in sink.messages[0].data
    assert message.contact_id == patient.pk


def test_refusals_are_clear(postgres, sink, admin):
    sender = make_sender(admin)
    no_consent = make_patient(f"n.{uuid.uuid4().hex[:8]}@example.test", actor=admin)
    client = client_with(["campaigns:send", "campaigns:write"], admin)

    def send(**extra):
        return client.post(
            "/api/v1/messages/",
            {"sender": sender.pk, "subject": "S", "html": PHI_HTML, **extra},
            format="json",
        )

    missing = send(contact=str(no_consent.uuid))
    assert missing.status_code == 400 and "transactional" in missing.json()["detail"]
    patient = patient_with_transactional_consent(admin)
    opportunistic = send(contact=str(patient.uuid), secure_policy="opportunistic")
    assert opportunistic.status_code == 400 and "PHI" in opportunistic.json()["detail"]
    both = send(contact=str(patient.uuid), email="x@example.test")
    assert both.status_code == 400
    unknown = send(email="nobody@example.test")
    assert unknown.status_code == 404
    assert not Message.objects.exists()
