"""Quiet hours hold every marketing send (issue #19 item 6), not only delivery plans:
campaigns started from the UI, the API and the scheduler, journey steps, and a throttled
send that runs into the evening; never transactional mail, nor a plan an Admin set not
to respect them. Time is simulated (time-machine); the suite's organization starts
without quiet hours (``LUXMAIL_DEFAULT_QUIET_HOURS``), these tests set 21-08."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from campaigns import services
from campaigns.journeys import engine
from campaigns.journeys import services as journey_services
from campaigns.models import Campaign, Message, MessageState
from campaigns.scheduling import planner
from campaigns.scheduling.local_time import QuietHours, curve, hour_of
from campaigns.sending import delivery
from campaigns.services import delivery_plans
from campaigns.tests.factories import make_campaign, make_contacts, make_sender
from campaigns.tests.journey_factories import active_journey, reminder_definition
from campaigns.transactional.send import message_send
from contacts.models import Contact
from luxmail import org
from luxmail.api.services import api_key_create

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = dt.timedelta(minutes=1)
# Ahead of the real clock: contacts and consents are created at real time, and the
# claim checks consents against the database's own clock.
DAY = (dt.datetime.now(UTC) + dt.timedelta(days=3)).date()


def local(day: dt.date, clock: str, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), tzinfo=zone).astimezone(UTC)


def _quiet_21_to_8() -> None:
    org.org_settings_update(actor=None, quiet_hours_start=21, quiet_hours_end=8)


def _zoned(n: int, prefix: str, zone: str, **kwargs) -> list[int]:
    ids = make_contacts(n, prefix=prefix, **kwargs)
    Contact.objects.filter(pk__in=ids).update(time_zone=zone)
    return ids


def _send_due(campaign_id: int) -> None:
    for _ in range(10):
        if not delivery.send_batch(campaign_id=campaign_id, limit=50).claimed:
            break
    services.campaign_finish_if_done(campaign_id=campaign_id)


def _not_before(campaign: Campaign) -> dict[int, dt.datetime | None]:
    return dict(
        Message.objects.filter(campaign=campaign).values_list("contact_id", "next_attempt_at")
    )


def test_the_suite_starts_without_quiet_hours() -> None:
    row = org.get_settings()
    assert row.quiet_hours_start == row.quiet_hours_end


def test_plain_campaign_started_in_quiet_hours_waits_for_their_end_in_each_zone(
    postgres, sink, admin
) -> None:
    _quiet_21_to_8()
    (berlin,) = _zoned(1, "qb", "Europe/Berlin")
    (new_york,) = _zoned(1, "qn", "America/New_York")
    campaign = make_campaign(contact_ids=[berlin, new_york], actor=admin)
    berlin_eight = local(DAY, "08:00", BERLIN)
    ny_eight = local(DAY, "08:00", NEW_YORK)
    # 04:00 in Berlin, 22:00 the evening before in New York: quiet in both.
    with time_machine.travel(local(DAY, "04:00", BERLIN), tick=False):
        services.campaign_start(campaign=campaign, actor=admin)
        assert _not_before(campaign) == {berlin: berlin_eight, new_york: ny_eight}
        campaign.refresh_from_db()
        assert planner.planned_curve(campaign) == [(berlin_eight, 1), (ny_eight, 1)]
        _send_due(campaign.pk)
        assert sink.recipients() == []
    with time_machine.travel(berlin_eight + MINUTE, tick=False):
        _send_due(campaign.pk)
        assert sorted(sink.recipients()) == ["qb0@example.test"]
    with time_machine.travel(ny_eight + MINUTE, tick=False):
        _send_due(campaign.pk)
        assert sorted(sink.recipients()) == ["qb0@example.test", "qn0@example.test"]
    assert set(Message.objects.filter(campaign=campaign).values_list("state", flat=True)) == {
        MessageState.SENT
    }


def test_a_throttled_send_that_runs_into_quiet_hours_holds_the_rest_and_resumes(
    postgres, sink, admin
) -> None:
    _quiet_21_to_8()
    ids = _zoned(3, "thr", "Europe/Berlin")
    campaign = make_campaign(contact_ids=ids, actor=admin, throttle_per_minute=1)
    evening = local(DAY, "20:30", BERLIN)
    morning = local(DAY + dt.timedelta(days=1), "08:00", BERLIN)
    with time_machine.travel(evening, tick=False):
        services.campaign_start(campaign=campaign, actor=admin)
        assert set(_not_before(campaign).values()) == {None}  # not quiet yet
        assert delivery.send_batch(campaign_id=campaign.pk, limit=1).sent == 1
    # The throttle carried the send past 21:00 in Berlin: the claim holds the rest.
    with time_machine.travel(local(DAY, "21:05", BERLIN), tick=False):
        report = delivery.send_batch(campaign_id=campaign.pk, limit=50)
        assert (report.claimed, report.held, report.sent) == (2, 2, 0)
        assert len(sink.recipients()) == 1
        rest = Message.objects.filter(campaign=campaign, state=MessageState.QUEUED)
        assert set(rest.values_list("next_attempt_at", flat=True)) == {morning}
        assert rest.filter(claim_token__isnull=True).count() == 2
        campaign.refresh_from_db()
        assert planner.planned_curve(campaign) == [(morning, 2)]
        _send_due(campaign.pk)
        assert len(sink.recipients()) == 1
    with time_machine.travel(morning + MINUTE, tick=False):
        _send_due(campaign.pk)
        assert len(sink.recipients()) == 3


def test_the_planned_curve_of_a_throttled_send_stops_at_quiet_hours_per_zone() -> None:
    quiet = QuietHours(21, 8)
    evening = local(DAY, "20:30", BERLIN)
    morning = local(DAY + dt.timedelta(days=1), "08:00", BERLIN)
    ny_afternoon = local(DAY, "14:30", NEW_YORK)  # the same moment
    assert ny_afternoon == evening
    due = [(evening, 100, BERLIN), (evening, 100, NEW_YORK)]
    assert curve([], per_minute=1, quiet=quiet, zones=due) == [
        (hour_of(evening), 60),  # 20:00 in Berlin: the first 60 (zones in name order)
        (hour_of(evening) + dt.timedelta(hours=1), 40),  # Berlin is quiet: New York's rest
        (morning, 60),  # Berlin's backlog from 08:00 there, still throttled
        (morning + dt.timedelta(hours=1), 40),
    ]
    # Without quiet hours the same backlog simply flows on.
    assert [n for _, n in curve([], per_minute=1, zones=due)] == [60, 60, 60, 20]


def test_campaign_started_through_the_api_is_held(postgres, sink, admin) -> None:
    _quiet_21_to_8()
    ids = _zoned(2, "api", "Europe/Berlin")
    campaign = make_campaign(contact_ids=ids, actor=admin)
    issued = api_key_create(name="quiet", scopes=["campaigns:send"], actor=admin)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    with time_machine.travel(local(DAY, "23:00", BERLIN), tick=False):
        started = api.post(f"/api/v1/campaigns/{campaign.pk}/schedule/", {}, format="json")
        assert started.status_code == 200, started.content
        assert sink.recipients() == []
        morning = local(DAY + dt.timedelta(days=1), "08:00", BERLIN)
        assert set(_not_before(campaign).values()) == {morning}


def test_a_journey_marketing_step_is_held_until_the_end_of_quiet_hours(
    postgres, sink, admin
) -> None:
    _quiet_21_to_8()
    (contact_id,) = _zoned(1, "jrn", "Europe/Berlin")
    journey = active_journey(reminder_definition(actor=admin), actor=admin)
    morning = local(DAY + dt.timedelta(days=1), "08:00", BERLIN)
    with time_machine.travel(local(DAY, "22:00", BERLIN), tick=False):
        journey_services.enroll_contact(
            journey=journey, contact=Contact.objects.get(pk=contact_id), actor=admin
        )
        report = engine.advance_due()  # queues the reminder; the pipeline runs (eager)
        assert report.messages == 1
        message = Message.objects.get(contact_id=contact_id)
        for campaign_id in report.campaigns:
            _send_due(campaign_id)
        assert sink.recipients() == []
        message.refresh_from_db()
        assert (message.state, message.next_attempt_at) == (MessageState.QUEUED, morning)
    with time_machine.travel(morning + MINUTE, tick=False):
        services.campaigns_recover()  # the sweep restarts the send chain once due
        _send_due(message.campaign_id)
        assert sink.recipients() == ["jrn0@example.test"]


def test_transactional_mail_is_never_held(postgres, sink, admin) -> None:
    _quiet_21_to_8()
    (contact_id,) = _zoned(1, "tx", "Europe/Berlin", consent=("transactional",))
    sender = make_sender(admin)
    with time_machine.travel(local(DAY, "23:30", BERLIN), tick=False):
        message = message_send(
            contact=Contact.objects.get(pk=contact_id),
            sender=sender,
            actor=admin,
            subject="Your appointment",
            html="<p>See you tomorrow.</p>",
        )
        _send_due(message.campaign_id)
        assert sink.recipients() == ["tx0@example.test"]


def test_a_plan_that_opts_out_of_quiet_hours_sends_at_once(postgres, sink, admin) -> None:
    _quiet_21_to_8()
    ids = _zoned(2, "opt", "Europe/Berlin")
    campaign = make_campaign(contact_ids=ids, actor=admin)
    delivery_plans.delivery_plan_set(
        campaign=campaign,
        actor=admin,
        local_date=None,
        local_time=None,
        respect_quiet_hours=False,
    )
    with time_machine.travel(local(DAY, "23:30", BERLIN), tick=False):
        services.campaign_start(campaign=campaign, actor=admin)
        assert set(_not_before(campaign).values()) == {None}
        _send_due(campaign.pk)
        assert sorted(sink.recipients()) == ["opt0@example.test", "opt1@example.test"]
