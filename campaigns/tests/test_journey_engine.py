"""The journey engine on a frozen clock (time-machine): sends through the real pipeline
into an aiosmtpd sink, waits, branches on *human* engagement read from reporting, and
runs every step exactly once.

The issue's reminder journey: send → wait 2 days → branch on a human open → follow-up
only to non-openers; an open that the classifier labels automated (a mail security
gateway fetching the pixel) does not count as opened.
"""

from __future__ import annotations

import datetime as dt

import pytest

from campaigns.journeys import engine, services
from campaigns.models import (
    EnrollmentState,
    JourneyEnrollment,
    JourneyStepCampaign,
    JourneyStepRun,
    Message,
    MessageState,
)
from campaigns.tests.factories import make_contacts
from campaigns.tests.journey_factories import active_journey, reminder_definition
from contacts.models import Contact
from reporting.models import Event
from reporting.tests.conftest import tracking_buffer  # noqa: F401  (fixture)
from reporting.tests.helpers import BROWSER, drain, hit, open_path

pytestmark = [pytest.mark.smtp, pytest.mark.redis]

START = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)
# A mail security gateway fetching every image of the message for inspection.
SCANNER = "Mozilla/5.0 (compatible; Mimecast URL protect)"


def _recipients(sink) -> list[str]:
    return sorted(sink.recipients())


def _message_of(journey, contact, key):
    run = JourneyStepRun.objects.get(
        enrollment__journey=journey, enrollment__contact=contact, step__key=key
    )
    return run.message


def test_reminder_follow_up_only_to_non_openers_and_a_bot_open_is_not_an_open(
    postgres,
    sink,
    admin,
    client,
    time_machine,
    tracking_buffer,  # noqa: F811
):
    time_machine.move_to(START, tick=False)
    ids = make_contacts(3, prefix="rem")
    human, bot_only, silent = (Contact.objects.get(pk=i) for i in ids)
    journey = active_journey(reminder_definition(actor=admin), actor=admin)
    for contact in (human, bot_only, silent):
        services.enroll_contact(journey=journey, contact=contact, actor=admin)

    report = engine.advance_due()  # runs the first step; the pipeline sends (eager)
    assert (report.claimed, report.messages) == (3, 3)
    assert _recipients(sink) == ["rem0@example.test", "rem1@example.test", "rem2@example.test"]
    assert set(JourneyEnrollment.objects.values_list("current_step__key", "step_state")) == {
        ("wait", "waiting")
    }

    time_machine.move_to(START + dt.timedelta(hours=1), tick=False)
    first = {c.pk: _message_of(journey, c, "reminder") for c in (human, bot_only, silent)}
    assert all(m.state == MessageState.SENT for m in first.values())
    # A person opens in a browser; a security gateway fetches the other one's pixel.
    hit(client, open_path(first[human.pk].pk, first[human.pk].campaign_id), agent=BROWSER)
    hit(
        client,
        open_path(first[bot_only.pk].pk, first[bot_only.pk].campaign_id),
        agent=SCANNER,
        ip="203.0.113.9",
    )
    drain()
    labels = dict(Event.objects.values_list("message_id", "label"))
    assert labels == {first[human.pk].pk: "human", first[bot_only.pk].pk: "automated"}

    time_machine.move_to(START + dt.timedelta(days=1), tick=False)
    assert engine.advance_due().claimed == 0  # everyone is still waiting
    assert len(sink.messages) == 3

    time_machine.move_to(START + dt.timedelta(days=2, minutes=5), tick=False)
    report = engine.advance_due()
    assert report.claimed == 3 and report.messages == 2
    assert _recipients(sink).count("rem0@example.test") == 1
    follow_ups = sorted(r for m in sink.messages[3:] for r in m.rcpt_tos)
    assert follow_ups == ["rem1@example.test", "rem2@example.test"]
    outcomes = dict(
        JourneyStepRun.objects.filter(step__key="opened").values_list(
            "enrollment__contact_id", "outcome"
        )
    )
    assert outcomes == {human.pk: "yes", bot_only.pk: "no", silent.pk: "no"}
    assert set(JourneyEnrollment.objects.values_list("state", "current_step__key")) == {
        (EnrollmentState.EXITED, "done")
    }
    # Every step ran once per contact; the two send steps are two step campaigns.
    runs = JourneyStepRun.objects.values_list("enrollment_id", "step_id")
    assert len(runs) == len(set(runs))
    assert JourneyStepCampaign.objects.filter(step__version__journey=journey).count() == 2
    assert Message.objects.filter(journey_run__enrollment__journey=journey).count() == 5
