"""Journey rules on a frozen clock: re-entry, version pinning, pause, goals, consent and
suppression re-checked before each send, waits in the contact's time zone, update
steps, and the activation checks (no dead ends, templates, durations, loops)."""

from __future__ import annotations

import datetime as dt

import pytest

from campaigns.journeys import definition as d
from campaigns.journeys import engine, services
from campaigns.models import (
    Campaign,
    CampaignStatus,
    EnrollmentState,
    JourneyEnrollment,
    JourneyStatus,
    JourneyStepRun,
    Message,
)
from campaigns.tests.factories import make_contacts, make_list, make_sender
from campaigns.tests.journey_factories import (
    active_journey,
    contacts_with_dates,
    make_template,
    reminder_definition,
    send_step,
)
from contacts.models import Contact
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 4, 6, 15, 0, tzinfo=dt.UTC)  # a Monday


def _contact(prefix: str = "c") -> Contact:
    return Contact.objects.get(pk=make_contacts(1, prefix=prefix)[0])


def _outcomes(contact) -> list[tuple[str, str]]:
    return list(
        JourneyStepRun.objects.filter(enrollment__contact=contact)
        .order_by("enrollment_id", "seq")
        .values_list("step__key", "outcome")
    )


# --- re-entry ------------------------------------------------------------------------------


def test_reentry_once_and_again_after_n_days(postgres, admin, time_machine):
    time_machine.move_to(START, tick=False)
    contact = _contact()
    exit_only = {"entry": "done", "steps": [{"key": "done", "kind": "exit"}]}
    once = active_journey({**exit_only, "reentry": {"mode": "once"}}, actor=admin)
    services.enroll_contact(journey=once, contact=contact, actor=admin)
    with pytest.raises(services.EnrollmentRefused) as refused:
        services.enroll_contact(journey=once, contact=contact, actor=admin)
    assert refused.value.code == "already_active"
    engine.advance_due()  # runs the exit step
    assert JourneyEnrollment.objects.get(journey=once).state == EnrollmentState.EXITED
    with pytest.raises(services.EnrollmentRefused) as refused:
        services.enroll_contact(journey=once, contact=contact, actor=admin)
    assert refused.value.code == "reentry_once"

    again = active_journey(
        {**exit_only, "reentry": {"mode": "after_days", "days": 30}}, actor=admin
    )
    services.enroll_contact(journey=again, contact=contact, actor=admin)
    engine.advance_due()
    time_machine.move_to(START + dt.timedelta(days=29), tick=False)
    with pytest.raises(services.EnrollmentRefused) as refused:
        services.enroll_contact(journey=again, contact=contact, actor=admin)
    assert refused.value.code == "reentry_wait"
    time_machine.move_to(START + dt.timedelta(days=30, minutes=1), tick=False)
    services.enroll_contact(journey=again, contact=contact, actor=admin)
    assert JourneyEnrollment.objects.filter(journey=again, contact=contact).count() == 2
    # Manual enrollments are audited with the contact id only.
    event = AuditEvent.objects.filter(action="journey.enroll").order_by("-id").first()
    assert event is not None and event.details["contact_id"] == contact.pk
    assert set(event.details) == {"contact_id", "enrollment_id", "version", "source"}


def test_reentry_on_the_same_version_sends_the_step_again_in_a_new_round(
    postgres, sink, admin, time_machine
):
    time_machine.move_to(START, tick=False)
    contact = _contact("round")
    sender, template = make_sender(admin), make_template(admin)
    journey = active_journey(
        {
            "reentry": {"mode": "after_days", "days": 1},
            "entry": "send",
            "steps": [send_step("send", template, sender, "done"), {"key": "done", "kind": "exit"}],
        },
        actor=admin,
    )
    services.enroll_contact(journey=journey, contact=contact, actor=admin)
    engine.advance_due()
    time_machine.move_to(START + dt.timedelta(days=2), tick=False)
    services.enroll_contact(journey=journey, contact=contact, actor=admin)
    engine.advance_due()
    campaigns = Message.objects.filter(contact=contact).values_list("campaign_id", flat=True)
    assert len(set(campaigns)) == 2  # a campaign holds one message per contact
    assert sink.recipients() == ["round0@example.test", "round0@example.test"]


# --- versions ------------------------------------------------------------------------------


def test_running_enrollments_finish_on_their_version(postgres, sink, admin, time_machine):
    time_machine.move_to(START, tick=False)
    early, late = _contact("early"), _contact("late")
    sender = make_sender(admin)
    old_follow_up = make_template(admin, subject="Old follow-up")
    definition = reminder_definition(actor=admin, sender=sender, second=old_follow_up)
    journey = active_journey(definition, actor=admin)
    services.enroll_contact(journey=journey, contact=early, actor=admin)
    engine.advance_due()

    # Edit: a different follow-up template and a one-day wait, published as version 2.
    new_follow_up = make_template(admin, subject="New follow-up")
    edited = services.definition_of(journey.current_version)
    for step in edited["steps"]:
        if step["key"] == "follow_up":
            step["config"]["template"] = new_follow_up.pk
        if step["key"] == "wait":
            step["config"] = {"mode": "duration", "days": 1}
    services.journey_set_definition(journey=journey, definition=edited, actor=admin, allow_phi=True)
    version = services.journey_publish(journey=journey, actor=admin)
    assert version.number == 2
    services.enroll_contact(journey=journey, contact=late, actor=admin)
    engine.advance_due()

    time_machine.move_to(START + dt.timedelta(days=3), tick=False)
    engine.advance_due()
    subjects = {
        m.contact_id: m.campaign.frozen_subject
        for m in Message.objects.filter(journey_run__step__key="follow_up").select_related(
            "campaign"
        )
    }
    assert subjects == {early.pk: "Old follow-up", late.pk: "New follow-up"}
    versions = dict(JourneyEnrollment.objects.values_list("contact_id", "version__number"))
    assert versions == {early.pk: 1, late.pk: 2}
    assert AuditEvent.objects.filter(action="journey.publish").count() == 2


def test_editing_never_changes_a_published_version(postgres, admin):
    journey = active_journey(reminder_definition(actor=admin), actor=admin)
    published = services.definition_of(journey.current_version)
    services.step_add(journey=journey, kind="wait", after="reminder", actor=admin, allow_phi=True)
    journey.refresh_from_db()
    assert services.definition_of(journey.current_version) == published
    draft = services.draft_version(journey)
    assert draft is not None and draft.number == 2 and len(draft.steps.all()) == 6


# --- pause, goal, consent ---------------------------------------------------------------------


def test_pause_holds_enrollments_and_their_queued_messages(postgres, sink, admin, time_machine):
    time_machine.move_to(START, tick=False)
    contact = _contact("held")
    journey = active_journey(reminder_definition(actor=admin), actor=admin)
    services.enroll_contact(journey=journey, contact=contact, actor=admin)
    services.journey_pause(journey=journey, actor=admin)
    assert engine.advance_due().claimed == 0
    assert not Message.objects.exists()
    step_campaigns = Campaign.objects.filter(journey_step__step__version__journey=journey)
    assert set(step_campaigns.values_list("status", flat=True)) == {CampaignStatus.PAUSED}

    services.journey_resume(journey=journey, actor=admin)
    assert engine.advance_due().messages == 1
    assert sink.recipients() == ["held0@example.test"]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"journey.activate", "journey.pause", "journey.resume", "journey.enroll"} <= actions


def test_goal_reached_ends_the_journey_before_the_follow_up(postgres, sink, admin, time_machine):
    from contacts import services as contact_services

    time_machine.move_to(START, tick=False)
    booked_list = make_list("Booked", [])
    contact = _contact("goal")
    definition = reminder_definition(
        actor=admin, goal={"field": "list", "op": "eq", "value": booked_list.pk}
    )
    journey = active_journey(definition, actor=admin)
    services.enroll_contact(journey=journey, contact=contact, actor=admin)
    engine.advance_due()
    contact_services.list_members_add(
        contact_list=booked_list, contact_ids=[contact.pk], actor=admin
    )
    time_machine.move_to(START + dt.timedelta(days=3), tick=False)
    engine.advance_due()
    enrollment = JourneyEnrollment.objects.get(contact=contact)
    assert (enrollment.state, enrollment.current_step.key) == (EnrollmentState.GOAL, "wait")
    assert sink.recipients() == ["goal0@example.test"]


def test_consent_and_suppression_are_checked_again_before_each_send(
    postgres, sink, admin, time_machine
):
    from contacts import services as contact_services

    time_machine.move_to(START, tick=False)
    revoked, suppressed, fine = _contact("rev"), _contact("sup"), _contact("ok")
    journey = active_journey(reminder_definition(actor=admin), actor=admin)
    for contact in (revoked, suppressed, fine):
        services.enroll_contact(journey=journey, contact=contact, actor=admin)
    contact_services.consent_revoke(contact=revoked, purpose="marketing", actor=admin)
    contact_services.suppression_add(
        email="sup0@example.test", reason="manual", actor=admin, note="asked by phone"
    )
    engine.advance_due()
    assert sink.recipients() == ["ok0@example.test"]
    assert _outcomes(revoked)[0] == ("reminder", "skipped")
    assert _outcomes(suppressed)[0] == ("reminder", "skipped")
    details = dict(
        JourneyStepRun.objects.filter(step__key="reminder").values_list(
            "enrollment__contact_id", "detail"
        )
    )
    assert details[revoked.pk] == "no consent" and details[suppressed.pk] in {
        "address suppressed",
        "contact not active",
    }


# --- waits and updates --------------------------------------------------------------------------


def test_time_window_wait_opens_in_the_contacts_time_zone(postgres, admin, time_machine):
    # Monday 15:00 UTC is 08:00 in Los Angeles: before its 09:00 to 17:00 window.
    time_machine.move_to(START, tick=False)
    contacts_with_dates(
        [
            {"email": "la@example.test", "time_zone": "America/Los_Angeles"},
            {"email": "paris@example.test", "time_zone": "Europe/Paris"},
        ],
        actor=admin,
    )
    journey = active_journey(
        {
            "entry": "window",
            "steps": [
                {
                    "key": "window",
                    "kind": "wait",
                    "config": {
                        "mode": "window",
                        "days": [0, 1, 2, 3, 4],
                        "start": "09:00",
                        "end": "17:00",
                    },
                    "next": "done",
                },
                {"key": "done", "kind": "exit"},
            ],
        },
        actor=admin,
    )
    for contact in Contact.objects.all():
        services.enroll_contact(journey=journey, contact=contact, actor=admin)
    engine.advance_due()
    states = dict(JourneyEnrollment.objects.values_list("contact__time_zone", "state"))
    # Paris (17:00 there): the window just closed → Tuesday 09:00; LA waits one hour.
    assert states == {"America/Los_Angeles": "active", "Europe/Paris": "active"}
    due = dict(JourneyEnrollment.objects.values_list("contact__time_zone", "next_run_at"))
    assert due["America/Los_Angeles"] == dt.datetime(2026, 4, 6, 16, 0, tzinfo=dt.UTC)
    assert due["Europe/Paris"] == dt.datetime(2026, 4, 7, 7, 0, tzinfo=dt.UTC)


def test_wait_until_one_day_before_the_appointment_reads_tokens_not_phi(
    postgres, admin, time_machine
):
    time_machine.move_to(dt.datetime(2026, 4, 6, 12, 0, tzinfo=dt.UTC), tick=False)
    contacts_with_dates(
        [
            {"email": "soon@example.test", "next_appointment": "2026-04-09", "time_zone": "UTC"},
            {"email": "none@example.test", "time_zone": "UTC"},
        ],
        actor=admin,
    )
    journey = active_journey(
        {
            "entry": "until",
            "steps": [
                {
                    "key": "until",
                    "kind": "wait",
                    "config": {
                        "mode": "until_date",
                        "field": "next_appointment",
                        "offset_days": -1,
                        "at": "10:00",
                    },
                    "next": "done",
                },
                {"key": "done", "kind": "exit"},
            ],
        },
        actor=admin,
    )
    for contact in Contact.objects.all():
        services.enroll_contact(journey=journey, contact=contact, actor=admin)
    phi_reads = AuditEvent.objects.filter(action="phi.access").count()
    engine.advance_due()
    # Without the date the contact leaves; the other waits for 7 April at 10:00 UTC.
    assert JourneyEnrollment.objects.filter(exit_reason="date_missing").count() == 1
    waiting = JourneyEnrollment.objects.get(state=EnrollmentState.ACTIVE)
    assert waiting.next_run_at == dt.datetime(2026, 4, 7, 10, 0, tzinfo=dt.UTC)
    for day, state in ((7, EnrollmentState.ACTIVE), (8, EnrollmentState.EXITED)):
        time_machine.move_to(dt.datetime(2026, 4, day, 10, 30, tzinfo=dt.UTC), tick=False)
        engine.advance_due()
        waiting.refresh_from_db()
        assert waiting.state == state
    assert AuditEvent.objects.filter(action="phi.access").count() == phi_reads


def test_update_steps_set_a_field_and_change_lists(postgres, admin, time_machine):
    from contacts.models import ListMembership

    time_machine.move_to(START, tick=False)
    contact = _contact("upd")
    welcome, waiting = make_list("Welcome", []), make_list("Waiting list", [])
    ListMembership.objects.create(contact_list=waiting, contact=contact)
    journey = active_journey(
        {
            "entry": "stage",
            "steps": [
                {
                    "key": "stage",
                    "kind": "update",
                    "config": {"action": "set_field", "field": "journey_stage", "value": "active"},
                    "next": "add",
                },
                {
                    "key": "add",
                    "kind": "update",
                    "config": {"action": "add_to_list", "list": welcome.pk},
                    "next": "remove",
                },
                {
                    "key": "remove",
                    "kind": "update",
                    "config": {"action": "remove_from_list", "list": waiting.pk},
                    "next": "done",
                },
                {"key": "done", "kind": "exit"},
            ],
        },
        actor=admin,
    )
    services.enroll_contact(journey=journey, contact=contact, actor=admin)
    engine.advance_due()
    assert _outcomes(contact) == [
        ("stage", "updated"),
        ("add", "updated"),
        ("remove", "updated"),
        ("done", "exited"),
    ]
    assert list(contact.memberships.values_list("contact_list__name", flat=True)) == ["Welcome"]
    from contacts.models import ContactTokenSet
    from contacts.tokens import token

    assert token("journey_stage", "active") in ContactTokenSet.objects.get(contact=contact).tokens
    update = AuditEvent.objects.filter(action="contact.update").order_by("-id").first()
    assert update is not None and update.actor_label == f"journey:{journey.pk}"


# --- activation checks ----------------------------------------------------------------------------


def test_activation_refuses_dead_ends_missing_templates_durations_and_loops(postgres, admin):
    journey = services.journey_create(
        name="Broken",
        actor=admin,
        definition={
            "entry": "send",
            "steps": [
                {"key": "send", "kind": "send", "config": {}, "next": "wait"},
                {"key": "wait", "kind": "wait", "config": {"mode": "duration"}, "next": "check"},
                {
                    "key": "check",
                    "kind": "branch",
                    "config": {
                        "mode": "segment",
                        "rules": {"field": "status", "op": "eq", "value": "active"},
                    },
                    "next": "again",
                },
                {
                    "key": "again",
                    "kind": "update",
                    "config": {"action": "add_to_list"},
                    "next": "check2",
                },
                {
                    "key": "check2",
                    "kind": "branch",
                    "config": {"mode": "engagement", "step": "send"},
                    "next": "again",
                    "no": "end",
                },
                {"key": "end", "kind": "exit"},
                {"key": "lonely", "kind": "exit"},
            ],
        },
    )
    with pytest.raises(d.DefinitionError) as error:
        services.journey_activate(journey=journey, actor=admin)
    messages = {(p.step, p.message) for p in error.value.problems}
    steps_with_problems = {step for step, _ in messages}
    assert {"send", "wait", "check", "again", "lonely"} <= steps_with_problems
    text = " ".join(m for _, m in messages)
    assert "Choose the template" in text
    assert "duration" in text
    assert "'no' path leads nowhere" in text
    assert "loop without a wait" in text
    assert "No path from the first step" in text
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.DRAFT and journey.current_version is None


def test_a_loop_through_a_wait_is_allowed(postgres, admin):
    sender, template = make_sender(admin), make_template(admin)
    definition = {
        "entry": "send",
        "steps": [
            send_step("send", template, sender, "wait"),
            {
                "key": "wait",
                "kind": "wait",
                "config": {"mode": "duration", "days": 7},
                "next": "opened",
            },
            {
                "key": "opened",
                "kind": "branch",
                "config": {
                    "mode": "engagement",
                    "event": "not_opened",
                    "step": "send",
                    "within_days": 7,
                },
                "next": "send",
                "no": "done",
            },
            {"key": "done", "kind": "exit"},
        ],
    }
    assert d.problems(d.clean(definition)) == []


def test_phi_criteria_need_a_phi_role(postgres, make_user):
    from luxmail import roles

    marketer = make_user(roles.MARKETER)
    definition = {
        "trigger": {"kind": "date", "field": "next_appointment", "offset_days": -7},
        "entry": "done",
        "steps": [{"key": "done", "kind": "exit"}],
    }
    with pytest.raises(d.JourneyError, match="PHI"):
        services.journey_create(name="Appointments", definition=definition, actor=marketer)
    phi_marketer = make_user(roles.PHI_MARKETER)
    assert services.journey_create(name="Appointments", definition=definition, actor=phi_marketer)


def test_rules_about_a_deleted_list_take_the_no_path_and_never_stop_the_batch(
    postgres, admin, time_machine
):
    from contacts import services as contact_services

    time_machine.move_to(START, tick=False)
    vip = make_list("VIP", [])
    first, second = _contact("del"), _contact("other")
    journey = active_journey(
        {
            "goal": {"field": "list", "op": "eq", "value": vip.pk},
            "entry": "check",
            "steps": [
                {
                    "key": "check",
                    "kind": "branch",
                    "config": {
                        "mode": "segment",
                        "rules": {"field": "list", "op": "eq", "value": vip.pk},
                    },
                    "next": "done",
                    "no": "done",
                },
                {"key": "done", "kind": "exit"},
            ],
        },
        actor=admin,
    )
    for contact in (first, second):
        services.enroll_contact(journey=journey, contact=contact, actor=admin)
    contact_services.contact_list_delete(contact_list=vip, actor=admin)
    report = engine.advance_due()
    assert (report.claimed, report.failed) == (2, 0)
    assert _outcomes(first) == [("check", "no"), ("done", "exited")]
    assert JourneyStepRun.objects.get(enrollment__contact=second, step__key="check").detail == (
        "condition no longer valid"
    )
