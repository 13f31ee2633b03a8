"""Settings → Webhooks pages: list, add (secret once), test, disable/enable, log."""

from __future__ import annotations

import pytest
from django.urls import reverse

from reporting import services, webhooks
from reporting.models import WebhookDelivery, WebhookEndpoint


def test_settings_page_links_to_webhooks(staff_client):
    page = staff_client("Admin").get(reverse("settings")).content.decode()
    assert reverse("reporting:webhooks") in page


def test_admin_adds_an_endpoint_and_sees_the_secret_once(staff_client, recording_server):
    client = staff_client("Admin")
    response = client.post(
        reverse("reporting:webhooks"),
        {
            "name": "Epic",
            "url": recording_server.url + "/hook",
            "event_types": ["opened", "clicked"],
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    endpoint = WebhookEndpoint.objects.get()
    secret = response.context["issued"].secret
    assert secret.startswith(webhooks.SECRET_PREFIX) and secret in page
    assert "shown only this once" in page
    again = client.get(reverse("reporting:webhooks")).content.decode()
    assert secret not in again and "Epic" in again
    detail = client.get(reverse("reporting:webhook_detail", args=[endpoint.uuid])).content.decode()
    assert secret not in detail


def test_form_errors_are_shown(staff_client):
    response = staff_client("Admin").post(
        reverse("reporting:webhooks"),
        {"name": "Bad", "url": "https://u:p@hooks.example.org/", "event_types": ["sent"]},
    )
    assert "Do not put credentials in the URL" in response.content.decode()
    missing = staff_client("Admin").post(reverse("reporting:webhooks"), {"name": "", "url": ""})
    assert missing.context["form"].errors.keys() >= {"name", "url", "event_types"}
    assert not WebhookEndpoint.objects.exists()


@pytest.fixture
def endpoint(db, make_user, recording_server):
    admin = make_user("Admin")
    return services.webhook_endpoint_create(
        name="CRM", url=recording_server.url + "/hook", event_types=["clicked"], actor=admin
    ).endpoint


def action(client, endpoint, name):
    return client.post(reverse("reporting:webhook_action", args=[endpoint.uuid, name]), follow=True)


def test_test_event_disable_enable_and_log(staff_client, endpoint, recording_server):
    client = staff_client("Admin")
    page = action(client, endpoint, "test").content.decode()
    assert "Test event delivered (HTTP 200)" in page
    recording_server.answer(503)
    page = action(client, endpoint, "test").content.decode()
    assert "Test event not delivered: HTTP 503 Service Unavailable" in page
    assert page.count("<td>test<br>") == 2  # both attempts are in the delivery log

    filtered = client.get(
        reverse("reporting:webhook_detail", args=[endpoint.uuid]), {"status": "failed"}
    ).content.decode()
    assert filtered.count("<td>test<br>") == 1

    page = action(client, endpoint, "disable").content.decode()
    endpoint.refresh_from_db()
    assert not endpoint.active and "no new events are queued" in page
    action(client, endpoint, "enable")
    endpoint.refresh_from_db()
    assert endpoint.active


def test_rotate_shows_the_new_secret_and_delete_removes(staff_client, endpoint):
    client = staff_client("Admin")
    response = client.post(reverse("reporting:webhook_action", args=[endpoint.uuid, "rotate"]))
    assert response.context["issued"].secret in response.content.decode()
    page = action(client, endpoint, "delete").content.decode()
    assert "and its delivery log were deleted" in page
    assert not WebhookEndpoint.objects.exists()


def test_settings_are_edited_on_the_detail_page(staff_client, endpoint):
    client = staff_client("Admin")
    url = reverse("reporting:webhook_detail", args=[endpoint.uuid])
    response = client.post(
        url, {"name": "CRM (prod)", "url": endpoint.url, "event_types": ["clicked", "bounced"]}
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.name == "CRM (prod)" and endpoint.event_types == ["bounced", "clicked"]


def test_redeliver_button(
    staff_client, endpoint, django_capture_on_commit_callbacks, recording_server
):
    failed = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_type="clicked",
        event_id="evt_x",
        payload=webhooks.build_payload(
            event_type="clicked",
            message_id=1,
            campaign_id=1,
            campaign_marketing_id=None,
            contact_external_id=None,
            event_time=endpoint.created_at,
            event_id="evt_x",
        ),
        status=WebhookDelivery.Status.FAILED,
        attempts=10,
    )
    client = staff_client("Admin")
    detail = client.get(reverse("reporting:webhook_detail", args=[endpoint.uuid])).content.decode()
    assert reverse("reporting:webhook_redeliver", args=[failed.uuid]) in detail
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("reporting:webhook_redeliver", args=[failed.uuid]))
    assert WebhookDelivery.objects.filter(event_id="evt_x", status="succeeded").count() == 1
    assert len(recording_server.requests) == 1


@pytest.mark.parametrize("role", ["Marketer", "Viewer", "Compliance Officer"])
def test_only_settings_managers_reach_the_pages(staff_client, endpoint, role):
    client = staff_client(role)
    assert client.get(reverse("reporting:webhooks")).status_code == 403
    assert client.get(reverse("reporting:webhook_detail", args=[endpoint.uuid])).status_code == 403
    assert action(client, endpoint, "disable").status_code == 403
