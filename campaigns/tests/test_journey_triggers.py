"""Automatic triggers: a date offset evaluated through the segment engine's date tokens
(in each contact's time zone), yearly dates, and segment/list entry with a seen set."""

from __future__ import annotations

import datetime as dt

import pytest

from campaigns.journeys import triggers
from campaigns.models import JourneyEnrollment, JourneySeen
from campaigns.tests.journey_factories import active_journey, contacts_with_dates

pytestmark = pytest.mark.django_db

EXIT_ONLY = [{"key": "done", "kind": "exit", "name": "Done"}]


def _definition(trigger: dict, reentry: dict | None = None) -> dict:
    return {
        "trigger": trigger,
        "reentry": reentry or {"mode": "after_days", "days": 1},
        "entry": "done",
        "steps": EXIT_ONLY,
    }


def _enrolled(journey) -> set[str]:
    from contacts.selectors import contacts_phi

    contacts = [e.contact for e in JourneyEnrollment.objects.filter(journey=journey)]
    revealed = contacts_phi(contacts=contacts, actor=None)
    return {values["email"] for values in revealed.values()}


def test_date_trigger_enrolls_exactly_the_contacts_seven_days_out_in_their_time_zone(
    postgres, admin, time_machine, settings
):
    settings.TIME_ZONE = "UTC"
    # 03:00 UTC on 7 May: still 6 May in Los Angeles, already midday in Tokyo.
    time_machine.move_to(dt.datetime(2026, 5, 7, 3, 0, tzinfo=dt.UTC), tick=False)
    rows = [
        ("utc-7@example.test", "2026-05-14", "UTC"),  # 7 days out
        ("utc-6@example.test", "2026-05-13", "UTC"),  # 6 days out
        ("utc-8@example.test", "2026-05-15", "UTC"),  # 8 days out
        ("la-7@example.test", "2026-05-13", "America/Los_Angeles"),  # 6 May + 7
        ("la-8@example.test", "2026-05-14", "America/Los_Angeles"),  # 8 days there
        ("tokyo-7@example.test", "2026-05-14", "Asia/Tokyo"),
        ("org-7@example.test", "2026-05-14", ""),  # no zone: the organization's (UTC)
        ("none@example.test", None, "UTC"),  # no appointment at all
    ]
    contacts_with_dates(
        [{"email": e, "next_appointment": day, "time_zone": tz} for e, day, tz in rows],
        actor=admin,
    )
    journey = active_journey(
        _definition({"kind": "date", "field": "next_appointment", "offset_days": -7}), actor=admin
    )
    report = triggers.evaluate_journey(journey_id=journey.pk)
    expected = {
        "utc-7@example.test",
        "la-7@example.test",
        "tokyo-7@example.test",
        "org-7@example.test",
    }
    assert report.enrolled == 4
    assert _enrolled(journey) == expected
    # Each enrollment remembers the occurrence (the appointment date), never the contact.
    assert set(JourneyEnrollment.objects.values_list("trigger_key", flat=True)) == {
        "2026-05-13",
        "2026-05-14",
    }

    # The same day again (beat ticks overlap or repeat): nobody enters twice.
    assert triggers.evaluate_journey(journey_id=journey.pk).enrolled == 0

    # Next local day: the 8-day contacts are now 7 days out.
    time_machine.move_to(dt.datetime(2026, 5, 8, 3, 0, tzinfo=dt.UTC), tick=False)
    triggers.evaluate_journey(journey_id=journey.pk)
    assert _enrolled(journey) == expected | {"utc-8@example.test", "la-8@example.test"}


def test_yearly_date_trigger_matches_month_and_day_of_any_year(postgres, admin, time_machine):
    from contacts import services as contact_services

    contact_services.custom_field_create(
        key="screening_due", label="Screening due", kind="date", actor=admin, phi=True
    )
    time_machine.move_to(dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC), tick=False)
    rows = [
        ("due-2024@example.test", "2024-03-01"),
        ("due-2026@example.test", "2026-03-01"),
        ("leap@example.test", "2024-02-29"),  # 1 March in a common year
        ("other-day@example.test", "2026-03-02"),
        ("future@example.test", "2028-03-01"),  # not due yet
    ]
    contacts_with_dates(
        [{"email": e, "custom.screening_due": day, "time_zone": "UTC"} for e, day in rows],
        actor=admin,
    )
    journey = active_journey(
        _definition(
            {"kind": "date", "field": "custom.screening_due", "offset_days": 0, "yearly": True}
        ),
        actor=admin,
    )
    triggers.evaluate_journey(journey_id=journey.pk)
    assert _enrolled(journey) == {
        "due-2024@example.test",
        "due-2026@example.test",
        "leap@example.test",
    }


def test_list_entry_enrolls_new_members_only_and_leaving_then_returning_is_entering(
    postgres, admin, time_machine
):
    from campaigns.tests.factories import make_contacts, make_list
    from contacts import services as contact_services
    from contacts.models import Contact

    time_machine.move_to(dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC), tick=False)
    ids = make_contacts(5, prefix="lst")
    members = make_list("Post-visit follow-up", ids[:3])
    journey = active_journey(
        _definition({"kind": "list", "list": members.pk}, {"mode": "after_days", "days": 1}),
        actor=admin,
    )
    # Priming: who was already on the list when the trigger was published is seen only.
    first = triggers.evaluate_journey(journey_id=journey.pk, limit=2)
    assert (first.seen, first.enrolled, first.more) == (2, 0, True)
    assert triggers.evaluate_journey(journey_id=journey.pk, limit=2).enrolled == 0
    assert JourneySeen.objects.filter(journey=journey).count() == 3
    assert JourneyEnrollment.objects.count() == 0

    contact_services.list_members_add(contact_list=members, contact_ids=ids[3:], actor=admin)
    report = triggers.evaluate_journey(journey_id=journey.pk)
    assert report.enrolled == 2
    assert set(JourneyEnrollment.objects.values_list("contact_id", flat=True)) == set(ids[3:])
    JourneyEnrollment.objects.update(state="exited")

    # Leaving the list forgets the contact; coming back a day later is entering again.
    contact_services.list_members_remove(contact_list=members, contact_ids=[ids[3]], actor=admin)
    assert triggers.evaluate_journey(journey_id=journey.pk).forgotten == 1
    time_machine.move_to(dt.datetime(2026, 6, 2, 10, 0, tzinfo=dt.UTC), tick=False)
    contact_services.list_members_add(contact_list=members, contact_ids=[ids[3]], actor=admin)
    assert triggers.evaluate_journey(journey_id=journey.pk).enrolled == 1
    assert JourneyEnrollment.objects.filter(contact_id=ids[3]).count() == 2
    assert Contact.objects.count() == 5


def test_segment_entry_with_existing_members_included(postgres, admin, time_machine):
    from contacts import services as contact_services

    time_machine.move_to(dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC), tick=False)
    contacts_with_dates(
        [
            {"email": "due@example.test", "next_appointment": "2026-06-20"},
            {"email": "later@example.test", "next_appointment": "2026-09-01"},
        ],
        actor=admin,
    )
    segment = contact_services.segment_create(
        name="Appointment in June",
        rules={"field": "next_appointment", "op": "between", "value": ["2026-06-01", "2026-06-30"]},
        actor=admin,
    )
    definition = _definition({"kind": "segment", "segment": segment.pk, "include_existing": True})
    journey = active_journey(definition, actor=admin)
    assert triggers.evaluate_journey(journey_id=journey.pk).enrolled == 1
    assert _enrolled(journey) == {"due@example.test"}
