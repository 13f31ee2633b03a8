"""The ``make run`` demo journey: active, with contacts in several steps, reached through
the real engine (delivered into the dev sink), and idempotent."""

from __future__ import annotations

from collections import Counter

import pytest

from campaigns import demo
from campaigns.journeys import demo as journeys_demo
from campaigns.models import Journey, JourneyEnrollment, JourneyStatus, Message
from contacts import demo as contacts_demo

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.slow]


def test_demo_journey_has_contacts_in_several_steps(postgres, admin, settings, tmp_path):
    settings.LUXMAIL_SINK_DIR = tmp_path
    contacts_demo.populate(actor=admin)
    demo.populate(actor=admin)
    journey = Journey.objects.get(name=journeys_demo.JOURNEY)
    assert journey.status == JourneyStatus.ACTIVE
    where = Counter(
        JourneyEnrollment.objects.filter(journey=journey).values_list(
            "state", "current_step__key", "exit_reason"
        )
    )
    assert where[("active", "wait", "")] == 6  # entered today, reminded, waiting
    assert where[("goal", "wait", "goal")] == 1  # confirmed during the wait
    assert where[("exited", "done", "exit_step")] == 7  # opened, or got the follow-up
    sent = Counter(
        Message.objects.filter(journey_run__enrollment__journey=journey, state="sent").values_list(
            "journey_run__step__key", flat=True
        )
    )
    assert sent == {"reminder": 14, "follow_up": 4}
    demo.populate(actor=admin)
    assert JourneyEnrollment.objects.filter(journey=journey).count() == 14
