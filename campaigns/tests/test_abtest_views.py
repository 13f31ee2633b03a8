"""The A/B test and local-time pages: forms reach the services, hostile input gets a
message and never a server error, and the campaign page shows the delivery curve."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import ABTest, CampaignStatus, DeliveryPlan
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(admin):
    return make_campaign(contact_ids=make_contacts(6, prefix="views"), actor=admin)


def _ab_data(**changes):
    data = {
        "test_percent": "50",
        "metric": "open_rate",
        "wait_hours": "2",
        "min_sample": "1",
        "auto_send_winner": "0",
        "subject_A": "Hello",
        "subject_B": "Hi {{ contact.first_name }}",
    }
    data.update(changes)
    return data


def test_configure_and_start_through_the_pages(staff_client, draft):
    client = staff_client(roles.ADMIN)
    page = client.get(f"/campaigns/{draft.pk}/")
    assert "Set up an A/B test" in page.content.decode()
    assert 'id="delivery-curve"' in page.content.decode()
    response = client.post(f"/campaigns/{draft.pk}/ab-test/", _ab_data(use_C="on"))
    assert response.status_code == 302
    test = ABTest.objects.get(campaign=draft)
    assert [v.label for v in test.variants.all()] == ["A", "B", "C"]
    assert (test.metric, test.auto_send_winner) == ("open_rate", False)
    assert client.post(f"/campaigns/{draft.pk}/ab-test/start/").status_code == 302
    test.refresh_from_db()
    assert test.state == "testing" and sum(v.recipients for v in test.variants.all()) == 3
    page = client.get(f"/campaigns/{draft.pk}/ab-test/").content.decode()
    assert 'data-state="testing"' in page and "seed" in page
    # The wait is not over: choosing a winner is refused with a message.
    variant = test.variants.first()
    response = client.post(
        f"/campaigns/{draft.pk}/ab-test/winner/", {"variant": variant.pk}, follow=True
    )
    assert "still running" in response.content.decode()


@pytest.mark.parametrize(
    "changes",
    [
        {"test_percent": "1000000000000"},
        {"test_percent": "-5"},
        {"wait_hours": "0"},
        {"min_sample": "abc"},
        {"metric": "sent"},
        {"subject_B": "{% for x in range(10**9) %}{% endfor %}" * 20},
        {"subject_B": "x" * 5000},
        {"subject_B": "{{ phi.conditions }}"},
        {"send_at_A": "not a date"},
        {"template_A": "99999999"},
    ],
)
def test_hostile_ab_input_gets_a_message(staff_client, draft, changes):
    client = staff_client(roles.ADMIN)
    response = client.post(f"/campaigns/{draft.pk}/ab-test/", _ab_data(**changes))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="error"' in body or "form-errors" in body
    assert not ABTest.objects.filter(campaign=draft).exclude(variants=None).exists()


def test_viewer_cannot_configure(staff_client, draft):
    client = staff_client(roles.VIEWER)
    assert client.post(f"/campaigns/{draft.pk}/ab-test/", _ab_data()).status_code == 403
    assert client.post(f"/campaigns/{draft.pk}/local-time/", {"save": "1"}).status_code == 403


def test_local_time_page_schedules_and_shows_the_curve(staff_client, draft):
    client = staff_client(roles.ADMIN)
    day = (timezone.now() + dt.timedelta(days=3)).date()
    response = client.post(
        f"/campaigns/{draft.pk}/local-time/",
        {
            "local_date": day.isoformat(),
            "local_time": "09:00",
            "respect_quiet_hours": "on",
            "schedule": "1",
        },
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SCHEDULED
    assert DeliveryPlan.objects.get(campaign=draft).local_time == dt.time(9, 0)
    page = client.get(f"/campaigns/{draft.pk}/local-time/").content.decode()
    assert 'id="delivery-curve-table"' in page and "<meter" in page
    assert "each recipient" in client.get(f"/campaigns/{draft.pk}/").content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {"local_date": "2026-02-31", "local_time": "09:00"},
        {"local_date": "1999-01-01", "local_time": "09:00"},
        {"local_date": "2999-01-01", "local_time": "25:99"},
        {"local_date": "9" * 5000, "local_time": "09:00"},
        {"local_date": "2999-01-01"},
    ],
)
def test_hostile_local_time_input_gets_a_message(staff_client, draft, data):
    client = staff_client(roles.ADMIN)
    response = client.post(f"/campaigns/{draft.pk}/local-time/", {**data, "schedule": "1"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="error"' in body or "form-errors" in body
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT
