"""The campaigns API: scopes, template validation errors, the send actions, bounces."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.content import footer
from campaigns.models import Campaign, CampaignStatus, Message
from campaigns.tests.factories import make_contacts, make_list
from campaigns.tests.reports import arf
from contacts.models import Contact, ContactStatus
from luxmail.api.services import api_key_create
from luxmail.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]


def client_with(scopes, admin):
    issued = api_key_create(name="test", scopes=scopes, actor=admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


def test_full_campaign_through_the_api(postgres, sink, admin) -> None:
    api = client_with(["campaigns:read", "campaigns:write", "campaigns:send"], admin)
    bad = api.post(
        "/api/v1/templates/",
        {"name": "x", "subject": "Hi", "html": "<p>ok</p>\n<p>{{ contact.ssn }}</p>"},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["line"] == 2 and "contact.ssn" in bad.json()["detail"]
    template = api.post(
        "/api/v1/templates/",
        {
            "name": "Welcome",
            "subject": "Hi {{ contact.first_name }}",
            "html": footer.footer_insert("<p>Hello</p>"),
        },
        format="json",
    ).json()
    preview = api.post(f"/api/v1/templates/{template['id']}/preview/", {}, format="json")
    assert preview.status_code == 200 and "Hello" in preview.json()["html"]
    sender = api.post(
        "/api/v1/senders/",
        {"name": "Clinic", "from_name": "Clinic", "from_email": "news@clinic.example"},
        format="json",
    ).json()
    assert sender["dkim_dns_record"]["value"].startswith("v=DKIM1; k=rsa; p=")
    assert "private" not in str(sender).lower()
    ids = make_contacts(3)
    audience = make_list("api", ids)
    campaign = api.post(
        "/api/v1/campaigns/",
        {"name": "Api", "template": template["id"], "sender": sender["id"], "lists": [audience.pk]},
        format="json",
    ).json()
    assert campaign["secure_policy"] == "tls_or_better"  # the organization default
    tested = api.post(
        f"/api/v1/campaigns/{campaign['id']}/test-send/",
        {"addresses": ["seed@qa.example"]},
        format="json",
    )
    assert tested.json() == {"accepted": 1}
    started = api.post(f"/api/v1/campaigns/{campaign['id']}/schedule/", {}, format="json")
    assert started.status_code == 200
    status = api.get(f"/api/v1/campaigns/{campaign['id']}/status/").json()
    assert status["status"] == "sent" and status["sent"] == 3 and status["remaining"] == 0
    again = api.post(f"/api/v1/campaigns/{campaign['id']}/pause/", {}, format="json")
    assert again.status_code == 409
    assert len(sink.messages) == 4


def test_scopes_are_enforced(postgres, admin) -> None:
    reader = client_with(["campaigns:read"], admin)
    assert reader.get("/api/v1/campaigns/").status_code == 200
    denied = reader.post("/api/v1/templates/", {"name": "x"}, format="json")
    assert denied.status_code == 403
    assert reader.post("/api/v1/bounces/", {"document": "x"}, format="json").status_code == 403


def test_api_key_cannot_allow_sending_without_dkim(postgres, admin) -> None:
    api = client_with(["campaigns:read", "campaigns:write"], admin)
    sender = api.post(
        "/api/v1/senders/",
        {
            "name": "No key",
            "from_name": "C",
            "from_email": "a@clinic.example",
            "generate_dkim": False,
        },
        format="json",
    ).json()
    refused = api.post(f"/api/v1/senders/{sender['id']}/allow-without-dkim/", {"allow": True})
    assert refused.status_code == 403


def test_bounce_documents_from_an_upstream_relay(postgres, sink, admin) -> None:
    from campaigns import services
    from campaigns.tests.factories import make_campaign

    ids = make_contacts(1)
    services.campaign_start(campaign=make_campaign(contact_ids=ids, actor=admin), actor=admin)
    headers = sink.messages[0].data.split(b"\r\n\r\n", 1)[0].decode()
    api = client_with(["bounces:write"], admin)
    raw = api.generic(
        "POST", "/api/v1/bounces/", arf(original_headers=headers), content_type="message/rfc822"
    )
    assert raw.status_code == 200 and raw.json()["suppressed"] == 1
    assert Contact.objects.get(pk=ids[0]).status == ContactStatus.COMPLAINED
    unread = api.post("/api/v1/bounces/", {"document": "Subject: hi\n\nhello"}, format="json")
    assert unread.status_code == 200 and unread.json()["unparsed"] == 1  # kept, never refused
    junk = api.post("/api/v1/bounces/", {"document": "\x00 not mail"}, format="json")
    assert junk.status_code == 400
    assert AuditEvent.objects.filter(action="bounce.complaint", actor_label__startswith="api-key:")
    assert Message.objects.count() == 1 and Campaign.objects.get().status == CampaignStatus.SENT
