"""Sending by local time and quiet hours (issue #19 item 6): the arithmetic, and the
pipeline delivering to two time zones at each one's 09:00 under a simulated clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from campaigns import services, tasks
from campaigns.models import Campaign, CampaignStatus, Message, MessageState
from campaigns.scheduling import planner
from campaigns.scheduling.local_time import (
    QuietHours,
    curve,
    first_local_instant,
    hour_of,
    not_before,
)
from campaigns.sending import delivery, queue
from campaigns.services import delivery_plans
from campaigns.services.errors import CampaignError
from campaigns.tests.factories import make_campaign, make_contacts
from contacts.models import Contact
from luxmail import org

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_quiet_hours_wrap_past_midnight_and_release_at_their_end() -> None:
    quiet = QuietHours(start=21, end=8)
    assert quiet.contains(dt.time(21, 0)) and quiet.contains(dt.time(7, 59))
    assert not quiet.contains(dt.time(8, 0)) and not quiet.contains(dt.time(20, 59))
    # 22:30 in Berlin (21:30 UTC) waits for 08:00 Berlin the next day (07:00 UTC).
    assert quiet.release(at("2026-12-07T21:30"), BERLIN) == at("2026-12-08T07:00")
    # 05:00 in Berlin waits for 08:00 the same day.
    assert quiet.release(at("2026-12-07T04:00"), BERLIN) == at("2026-12-07T07:00")
    assert quiet.release(at("2026-12-07T12:00"), BERLIN) == at("2026-12-07T12:00")
    assert QuietHours(start=9, end=9).release(at("2026-12-07T08:30"), BERLIN) == at(
        "2026-12-07T08:30"
    )
    daytime = QuietHours(start=12, end=14)
    assert daytime.contains(dt.time(13, 0)) and not daytime.contains(dt.time(14, 0))


def test_local_send_time_per_zone_never_in_the_past_and_pushed_out_of_quiet_hours() -> None:
    now = at("2026-12-07T05:00")
    nine = {"local_date": dt.date(2026, 12, 7), "local_time": dt.time(9, 0)}
    assert not_before(now=now, zone=BERLIN, **nine) == at("2026-12-07T08:00")
    assert not_before(now=now, zone=NEW_YORK, **nine) == at("2026-12-07T14:00")
    # Already past 09:00 in Tokyo: now.
    assert not_before(now=now, zone=ZoneInfo("Asia/Tokyo"), **nine) == now
    # 06:00 local is inside quiet hours 21-08: 08:00 local instead.
    six = {"local_date": dt.date(2026, 12, 7), "local_time": dt.time(6, 0)}
    assert not_before(now=now, zone=BERLIN, quiet=QuietHours(21, 8), **six) == at(
        "2026-12-07T07:00"
    )
    assert first_local_instant(dt.date(2026, 12, 7), dt.time(9, 0)) == at("2026-12-06T19:00")


def test_delivery_curve_spreads_by_the_throttle() -> None:
    due = [(at("2026-12-07T08:00"), 150), (at("2026-12-07T08:30"), 30), (at("2026-12-07T14:10"), 5)]
    assert curve(due, per_minute=None) == [
        (at("2026-12-07T08:00"), 180),
        (at("2026-12-07T14:00"), 5),
    ]
    # 1 per minute: 60 an hour, the backlog flows into the next hours.
    assert curve(due, per_minute=1) == [
        (at("2026-12-07T08:00"), 60),
        (at("2026-12-07T09:00"), 60),
        (at("2026-12-07T10:00"), 60),
        (at("2026-12-07T14:00"), 5),
    ]
    assert curve([], per_minute=5) == []


# The simulated days lie ahead of the real clock: contacts and consents are created at
# real time and the database checks consents against its own clock.
DAY = (dt.datetime.now(UTC) + dt.timedelta(days=2)).date()


MINUTE = dt.timedelta(minutes=1)


def local(day: dt.date, clock: str, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), tzinfo=zone).astimezone(UTC)


BERLIN_NINE = local(DAY, "09:00", BERLIN)
NY_NINE = local(DAY, "09:00", NEW_YORK)


def _two_zone_campaign(admin, prefix: str = "tz", **fields) -> tuple[Campaign, int, int]:
    berlin, new_york = make_contacts(2, prefix=prefix)
    Contact.objects.filter(pk=berlin).update(time_zone="Europe/Berlin")
    Contact.objects.filter(pk=new_york).update(time_zone="")  # the organization's default
    org.org_settings_update(actor=None, contact_default_time_zone="America/New_York")
    campaign = make_campaign(contact_ids=[berlin, new_york], actor=admin, **fields)
    return campaign, berlin, new_york


def _send_due(campaign: Campaign) -> None:
    for _ in range(5):
        if not delivery.send_batch(campaign_id=campaign.pk, limit=50).claimed:
            break
    services.campaign_finish_if_done(campaign_id=campaign.pk)


def _received(sink) -> list[str]:
    return sorted(sink.recipients())


@pytest.mark.postgres
@pytest.mark.smtp
@pytest.mark.django_db
def test_local_time_send_reaches_two_time_zones_each_at_their_nine(postgres, sink, admin) -> None:
    campaign, berlin, new_york = _two_zone_campaign(admin)
    with time_machine.travel(local(DAY - dt.timedelta(days=1), "12:00", BERLIN), tick=False):
        delivery_plans.delivery_plan_set(
            campaign=campaign,
            actor=admin,
            local_date=DAY,
            local_time=dt.time(9, 0),
        )
        campaign = delivery_plans.delivery_plan_schedule(campaign=campaign, actor=admin)
        # Starts when 09:00 on that day first happens anywhere (UTC+14).
        assert campaign.status == CampaignStatus.SCHEDULED
        assert campaign.scheduled_at == local(DAY, "09:00", ZoneInfo("Pacific/Kiritimati"))
        curve_before = planner.planned_curve(campaign)
        assert curve_before == [(hour_of(BERLIN_NINE), 1), (hour_of(NY_NINE), 1)]

    with time_machine.travel(campaign.scheduled_at + dt.timedelta(seconds=30), tick=False):
        assert services.campaigns_start_due() == 1
        planned = dict(
            Message.objects.filter(campaign=campaign).values_list("contact_id", "next_attempt_at")
        )
        assert planned == {berlin: BERLIN_NINE, new_york: NY_NINE}
        _send_due(campaign)
        assert _received(sink) == []
        assert queue.next_due(campaign_id=campaign.pk) == BERLIN_NINE

    with time_machine.travel(BERLIN_NINE - MINUTE, tick=False):
        _send_due(campaign)
        assert _received(sink) == []
    with time_machine.travel(BERLIN_NINE + MINUTE, tick=False):
        _send_due(campaign)
        assert _received(sink) == ["tz0@example.test"]  # Berlin, 09:00 there
    with time_machine.travel(NY_NINE - MINUTE, tick=False):
        _send_due(campaign)
        assert _received(sink) == ["tz0@example.test"]
    with time_machine.travel(NY_NINE + MINUTE, tick=False):
        _send_due(campaign)
        assert _received(sink) == ["tz0@example.test", "tz1@example.test"]  # New York, 09:00
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    states = set(Message.objects.filter(campaign=campaign).values_list("state", flat=True))
    assert states == {MessageState.SENT}


@pytest.mark.postgres
@pytest.mark.smtp
@pytest.mark.django_db
def test_quiet_hours_defer_marketing_until_they_end_and_the_throttle_still_applies(
    postgres, sink, admin
) -> None:
    # Contacts (and their consents) exist now: the claim checks consents against the
    # database's clock, which the simulated time does not move.
    campaign, berlin, new_york = _two_zone_campaign(admin, throttle_per_minute=1)
    org.org_settings_update(actor=None, quiet_hours_start=21, quiet_hours_end=8)
    start = local(DAY, "22:30", BERLIN)
    berlin_morning = local(DAY + dt.timedelta(days=1), "08:00", BERLIN)
    with time_machine.travel(start, tick=False):
        # 22:30 in Berlin (quiet), 16:30 or so in New York (not quiet).
        delivery_plans.delivery_plan_set(
            campaign=campaign, actor=admin, local_date=None, local_time=None
        )
        services.campaign_start(campaign=campaign, actor=admin)
        planned = dict(
            Message.objects.filter(campaign=campaign).values_list("contact_id", "next_attempt_at")
        )
        assert planned == {berlin: berlin_morning, new_york: None}
        campaign.refresh_from_db()
        assert planner.planned_curve(campaign) == [
            (hour_of(start), 1),
            (hour_of(berlin_morning), 1),
        ]
        _send_due(campaign)
        assert _received(sink) == ["tz1@example.test"]
    with time_machine.travel(berlin_morning + MINUTE, tick=False):
        _send_due(campaign)
        assert _received(sink) == ["tz0@example.test", "tz1@example.test"]


@pytest.mark.django_db
def test_a_campaign_without_a_plan_sends_at_once_and_bad_plans_are_refused(admin) -> None:
    with time_machine.travel(local(DAY, "23:00", BERLIN), tick=False):
        campaign, _, _ = _two_zone_campaign(admin)
        services.campaign_start(campaign=campaign, actor=admin)
        assert not Message.objects.filter(campaign=campaign, next_attempt_at__isnull=False).exists()
        other, _, _ = _two_zone_campaign(admin, prefix="other")
        with pytest.raises(CampaignError, match="both"):
            delivery_plans.delivery_plan_set(
                campaign=other, actor=admin, local_date=DAY + dt.timedelta(days=2), local_time=None
            )
        with pytest.raises(CampaignError, match="every time zone"):
            delivery_plans.delivery_plan_set(
                campaign=other,
                actor=admin,
                local_date=DAY - dt.timedelta(days=3),
                local_time=dt.time(9, 0),
            )


@pytest.mark.postgres
@pytest.mark.smtp
@pytest.mark.django_db
def test_an_eager_send_task_ends_its_chain_on_a_wait_and_recovery_resumes_it(
    postgres, sink, admin
) -> None:
    # Eagerly (tests, LUXMAIL_CELERY_EAGER) a countdown is not honoured: the chain used to
    # re-dispatch itself at once until the stack overflowed.
    campaign, _, _ = _two_zone_campaign(admin, prefix="eager")
    with time_machine.travel(local(DAY - dt.timedelta(days=1), "12:00", BERLIN), tick=False):
        delivery_plans.delivery_plan_set(
            campaign=campaign, actor=admin, local_date=DAY, local_time=dt.time(9, 0)
        )
        campaign = delivery_plans.delivery_plan_schedule(campaign=campaign, actor=admin)
    with time_machine.travel(campaign.scheduled_at + dt.timedelta(seconds=30), tick=False):
        assert services.campaigns_start_due() == 1
        tasks.send_batch.apply(args=(campaign.pk,))
        assert _received(sink) == []
        assert queue.chains_live(campaign_id=campaign.pk) == 0  # the chain ended
    with time_machine.travel(BERLIN_NINE + MINUTE, tick=False):
        assert services.campaigns_recover()["restarted"] >= 1
        assert _received(sink) == ["eager0@example.test"]
