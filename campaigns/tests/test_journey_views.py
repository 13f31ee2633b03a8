"""Journey builder pages through the Django test client: build, validate, activate,
pause, enroll; statistics on the flow; permissions and PHI locking."""

from __future__ import annotations

import re

import pytest

from campaigns.journeys import engine, services
from campaigns.models import Journey, JourneyEnrollment, JourneyStatus
from campaigns.tests.factories import make_contacts, make_sender
from campaigns.tests.journey_factories import active_journey, make_template, reminder_definition
from contacts.models import Contact
from luxmail import roles

pytestmark = pytest.mark.django_db


def _steps(journey):
    draft = services.draft_version(journey) or journey.current_version
    return {s.key: s for s in draft.steps.all()}


def test_build_a_journey_step_by_step_and_activate_it(postgres, staff_client, admin):
    client = staff_client(roles.PHI_MARKETER)
    template, sender = make_template(admin), make_sender(admin)
    response = client.post(
        "/campaigns/journeys/new/", {"name": "Flu shot reminder", "description": "Autumn"}
    )
    journey = Journey.objects.get(name="Flu shot reminder")
    assert response.status_code == 302 and response["Location"].endswith(f"/{journey.pk}/")

    # Insert a send step before the exit, then a wait after it.
    response = client.post(
        f"/campaigns/journeys/{journey.pk}/steps/add/",
        {"kind": "send", "after": "", "path": "next"},
    )
    send_key = response["Location"].rstrip("/").rsplit("/", 1)[1]
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"Sender identity" in page.content
    client.post(
        f"/campaigns/journeys/{journey.pk}/steps/{send_key}/",
        {
            "name": "Invitation",
            "template": template.pk,
            "sender": sender.pk,
            "secure_policy": "",
            "track_opens": "on",
            "track_clicks": "on",
            "next_key": "exit",
        },
    )
    response = client.post(
        f"/campaigns/journeys/{journey.pk}/steps/add/",
        {"kind": "wait", "after": send_key, "path": "next"},
    )
    wait_key = response["Location"].rstrip("/").rsplit("/", 1)[1]
    saved = client.post(
        f"/campaigns/journeys/{journey.pk}/steps/{wait_key}/",
        {"name": "Three days", "mode": "duration", "days": "3", "next_key": "exit"},
    )
    assert saved.status_code == 302
    steps = _steps(journey)
    assert steps[send_key].next_key == wait_key and steps[wait_key].next_key == "exit"
    assert steps[wait_key].config == {"mode": "duration", "days": 3, "hours": 0, "minutes": 0}

    # A branch on engagement, its No path gets a follow-up.
    response = client.post(
        f"/campaigns/journeys/{journey.pk}/steps/add/",
        {"kind": "branch", "after": wait_key, "path": "next"},
    )
    branch_key = response["Location"].rstrip("/").rsplit("/", 1)[1]
    client.post(
        f"/campaigns/journeys/{journey.pk}/steps/{branch_key}/",
        {
            "name": "Opened?",
            "mode": "engagement",
            "event": "opened",
            "step": send_key,
            "within_days": "3",
            "next_key": "exit",
            "no_key": "exit",
        },
    )
    response = client.post(
        f"/campaigns/journeys/{journey.pk}/steps/add/",
        {"kind": "send", "after": branch_key, "path": "no"},
    )
    follow_key = response["Location"].rstrip("/").rsplit("/", 1)[1]
    assert _steps(journey)[branch_key].no_key == follow_key

    # Activation refuses the incomplete follow-up and says why, next to the step.
    client.post(f"/campaigns/journeys/{journey.pk}/activate/")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.DRAFT
    page = client.get(f"/campaigns/journeys/{journey.pk}/").content.decode()
    assert "problem" in page and "Choose the template this step sends." in page
    assert f'href="#step-{follow_key}"' in page
    # The flow reads top to bottom: invitation, wait, branch with its two paths.
    order = [m for m in re.findall(r'data-step="([\w-]+)"', page)]
    assert order[:3] == [send_key, wait_key, branch_key]

    client.post(
        f"/campaigns/journeys/{journey.pk}/steps/{follow_key}/",
        {"name": "Second try", "template": template.pk, "sender": sender.pk, "next_key": "exit"},
    )
    client.post(f"/campaigns/journeys/{journey.pk}/activate/")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.ACTIVE and journey.current_version.number == 1
    page = client.get(f"/campaigns/journeys/{journey.pk}/").content.decode()
    assert "Statistics of v1" in page and 'data-stat="sent"' in page


def test_flow_shows_per_step_statistics_and_enrollments(postgres, sink, staff_client, admin):
    client = staff_client(roles.ADMIN)
    journey = active_journey(reminder_definition(actor=admin), actor=admin, name="Reminders")
    ids = make_contacts(2, prefix="st")
    page = client.post(
        f"/campaigns/journeys/{journey.pk}/enroll/", {"reference": "st0@example.test"}
    )
    assert page.status_code == 302
    contact = Contact.objects.get(pk=ids[1])
    client.post(f"/campaigns/journeys/{journey.pk}/enroll/", {"reference": str(contact.uuid)})
    assert JourneyEnrollment.objects.filter(journey=journey).count() == 2
    engine.advance_due()
    page = client.get(f"/campaigns/journeys/{journey.pk}/").content.decode()
    reminder = page.split('id="step-reminder"', 1)[1].split("</article>", 1)[0]
    assert re.search(r'data-stat="entered">2<', reminder)
    assert re.search(r'data-stat="sent">2<', reminder)
    wait = page.split('id="step-wait"', 1)[1].split("</article>", 1)[0]
    assert re.search(r'data-stat="waiting">2<', wait)
    assert "st0@example.test" not in page  # contacts appear by number only
    assert (
        client.post(
            f"/campaigns/journeys/{journey.pk}/enroll/", {"reference": "nobody@example.test"}
        ).status_code
        == 302
    )

    client.post(f"/campaigns/journeys/{journey.pk}/pause/")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.PAUSED
    client.post(f"/campaigns/journeys/{journey.pk}/resume/")
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.ACTIVE


def test_viewers_read_and_marketers_cannot_change_phi_journeys(postgres, staff_client, admin):
    definition = {
        "trigger": {"kind": "date", "field": "next_appointment", "offset_days": -7},
        "entry": "done",
        "steps": [{"key": "done", "kind": "exit"}],
    }
    journey = services.journey_create(name="Appointments", definition=definition, actor=admin)
    viewer = staff_client(roles.VIEWER)
    assert viewer.get("/campaigns/journeys/").status_code == 200
    assert viewer.get(f"/campaigns/journeys/{journey.pk}/").status_code == 200
    assert viewer.post(f"/campaigns/journeys/{journey.pk}/activate/").status_code == 403
    marketer = staff_client(roles.MARKETER)
    page = marketer.get(f"/campaigns/journeys/{journey.pk}/").content.decode()
    assert "only the PHI Marketer and Admin roles may change it" in page
    assert "+ Add step" not in page
    marketer.post(f"/campaigns/journeys/{journey.pk}/steps/add/", {"kind": "wait", "after": ""})
    assert len(_steps(journey)) == 1


def test_the_nav_links_journeys(staff_client):
    page = staff_client(roles.MARKETER).get("/campaigns/journeys/").content.decode()
    assert 'href="/campaigns/journeys/" aria-current="page">Journeys' in page
