"""Rollups: maintained incrementally by the send pipeline (triggers) and the ingester,
and equal to a rebuild from raw data."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import recipients, services
from campaigns.models import Message
from campaigns.sending import bounces, delivery
from campaigns.tests.conftest import sink  # noqa: F401 - the real aiosmtpd relay fixture
from campaigns.tests.factories import make_campaign, make_contacts
from campaigns.tests.reports import dsn
from contacts.models import Contact
from reporting import buffer, ingest, rollups
from reporting.classification import message_engagement
from reporting.models import (
    LABEL_RANK,
    CampaignRollup,
    DomainDayRollup,
    DomainMonthRollup,
    DomainRollup,
    DomainTotalRollup,
    DomainWeekRollup,
    Event,
    EventRollup,
    MessageStat,
)
from reporting.tests.helpers import (
    APPLE_MPP,
    BROWSER,
    built_html,
    drain,
    mark_sent,
    started_campaign,
)

pytestmark = pytest.mark.django_db

METRICS = rollups.METRIC_NAMES


def _table(model, keys):
    rows = {}
    for row in model.objects.values(*keys, *METRICS):
        values = tuple(row[name] for name in METRICS)
        if any(values):
            rows[tuple(row[key] for key in keys)] = values
    return rows


def snapshot():
    rollups.fold()  # what the periodic task does with the triggers' journal
    return {
        "stat": {
            row["message_id"]: row for row in MessageStat.objects.values().order_by("message_id")
        },
        "campaign": _table(CampaignRollup, ("hour", "campaign_id", "channel")),
        "domain": _table(DomainRollup, ("hour", "campaign_id", "domain", "channel")),
        "month": _table(DomainMonthRollup, ("month", "domain")),
        "day": _table(DomainDayRollup, ("day", "domain")),
        "week": _table(DomainWeekRollup, ("week", "domain")),
        "total": _table(DomainTotalRollup, ("domain",)),
        "events": {
            (row["hour"], row["campaign_id"], row["kind"], row["label"]): row["events"]
            for row in EventRollup.objects.values()
            if row["events"]
        },
    }


def _entry(kind, message_id, campaign_id, when, *, link=None, ua=BROWSER, ip="198.51.100.7"):
    entry = {
        "k": kind,
        "m": message_id,
        "c": campaign_id,
        "t": when.timestamp(),
        "ip": ip,
        "ua": ua,
    }
    if link is not None:
        entry["l"] = link
    buffer.append(entry)


def test_messages_get_a_report_row_when_queued_and_follow_their_state(tracking_buffer):
    campaign, ids = started_campaign(4, domain="clinic.example")
    stats = MessageStat.objects.filter(message_id__in=ids)
    assert stats.count() == 4
    assert set(stats.values_list("state", "channel", "domain")) == {
        ("queued", "", "clinic.example")
    }
    rollups.fold()
    row = CampaignRollup.objects.get(campaign_id=campaign.pk)
    assert (row.messages, row.queued, row.sent) == (4, 4, 0)

    # queued -> sending -> deferred moves nothing in the reports
    Message.objects.filter(id=ids[0]).update(state="sending")
    Message.objects.filter(id=ids[0]).update(state="deferred")
    rollups.fold()
    assert CampaignRollup.objects.get(campaign_id=campaign.pk).queued == 4

    mark_sent(ids[:3], channel="tls")
    Message.objects.filter(id=ids[3]).update(state="failed", channel="")
    rollups.fold()
    rows = {r.channel: r for r in CampaignRollup.objects.filter(campaign_id=campaign.pk)}
    assert (rows["tls"].messages, rows["tls"].sent, rows["tls"].delivered) == (3, 3, 3)
    assert (rows[""].messages, rows[""].failed, rows[""].queued) == (1, 1, 0)
    domain = DomainRollup.objects.get(campaign_id=campaign.pk, channel="tls")
    assert (domain.domain, domain.delivered) == ("clinic.example", 3)


def test_the_real_send_pipeline_keeps_rollups_current(sink, make_user, tracking_buffer):  # noqa: F811
    require_postgres()
    admin = make_user("Admin")
    contact_ids = make_contacts(12, domain="a.example", prefix="snd")
    campaign = make_campaign(contact_ids=contact_ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    for _ in range(10):
        if not delivery.send_batch(campaign_id=campaign.pk, limit=5).claimed:
            break
    assert len(sink.recipients()) == 12
    channel = Message.objects.filter(campaign=campaign).values_list("channel", flat=True)[0]
    rollups.fold()
    row = CampaignRollup.objects.get(campaign_id=campaign.pk, channel=channel)
    assert (row.messages, row.sent, row.delivered, row.queued) == (12, 12, 12, 0)
    before = snapshot()
    rollups.rebuild()
    assert snapshot() == before


def require_postgres():
    from luxmail.testing import require

    require(connection.vendor == "postgresql", "needs PostgreSQL")


def test_rebuild_equals_incremental(tracking_buffer, make_user):
    """Everything that changes a report at once: sends, failures, bounces, complaints,
    unsubscribes, opens and clicks (with a sweep relabelled), a deleted contact and a
    contact who changed address, a resend — then a rebuild from raw data."""
    admin = make_user("Admin")
    first, ids = started_campaign(6, actor=admin, domain="one.example", marketing_id="A")
    second, other = started_campaign(3, actor=admin, domain="two.example", honeypot=True)
    built_html(first, ids[0])
    built_html(second, other[0])
    sent = timezone.now() - dt.timedelta(hours=2)
    Message.objects.filter(id__in=ids[:5] + other).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    Message.objects.filter(id=ids[5]).update(state="failed")
    Message.objects.filter(id=other[2]).update(channel="portal")

    # A hard bounce and a complaint (DSN/ARF through the bounce processor).
    from campaigns.sending import tokens

    for message_id, status in ((ids[1], "5.1.1"),):
        token = tokens.make(tokens.BOUNCE, message_id)
        bounces.bounce_process(
            raw=dsn(
                to=f"bounces+{token}@clinic.example", original_headers="Subject: x", status=status
            ),
            source="api",
            actor=admin,
        )
    from campaigns.models import BounceEvent

    BounceEvent.objects.create(message_id=ids[2], kind="complaint", source="api")
    # An unsubscribe through the recipient's link.
    recipients.unsubscribe(
        link=recipients.link_for_token(tokens.make(tokens.UNSUBSCRIBE, ids[3])),
        one_click=True,
        request=None,
    )
    # Opens and clicks: a person, Apple's proxy, a three-link sweep (relabelled), the
    # honeypot.
    _entry("o", ids[0], first.pk, sent + dt.timedelta(minutes=30))
    _entry("c", ids[0], first.pk, sent + dt.timedelta(minutes=31), link=1)
    _entry("o", ids[2], first.pk, sent + dt.timedelta(minutes=5), ua=APPLE_MPP)
    for second_offset, link in ((20, 1), (21, 2), (22, 3)):
        _entry("c", ids[4], first.pk, sent + dt.timedelta(seconds=second_offset), link=link)
    _entry("c", other[0], second.pk, sent + dt.timedelta(minutes=2), link=0)
    _entry("o", other[1], second.pk, sent + dt.timedelta(days=1), ua="SomeMailApp/1.0")
    report = drain()
    assert report.stored == 8 and report.relabeled == 2

    # A contact deleted (its message keeps its domain) and one who changed address.
    Contact.objects.filter(pk=Message.objects.get(id=ids[0]).contact_id).update(
        domain="moved.example"
    )
    # (what deleting the contact does to its messages: SET_NULL)
    Message.objects.filter(id=other[1]).update(contact=None)
    # The operator resends the failed message; it is delivered.
    services.message_resend(message=Message.objects.get(id=ids[5]), actor=admin)
    mark_sent([ids[5]])

    incremental = snapshot()
    row = {r.channel: r for r in CampaignRollup.objects.filter(campaign_id=first.pk)}["tls"]
    assert (row.sent, row.delivered, row.bounced, row.complained, row.unsubscribed) == (
        6,
        5,
        1,
        1,
        1,
    )
    assert (row.opened_human, row.opened_automated, row.clicked_human, row.clicked_automated) == (
        1,
        2,
        1,
        1,
    )
    # The scanner's click alone implies an automated open: 2 opened only by machines,
    # so 2 automated opens (this read 1 before, below the unique count).
    assert (row.opens_human, row.opens_automated, row.clicks_human, row.clicks_automated) == (
        1,
        2,
        1,
        3,
    )
    result = rollups.rebuild()
    assert result.messages == 9
    rebuilt = snapshot()
    assert rebuilt["stat"] == incremental["stat"]
    assert rebuilt["campaign"] == incremental["campaign"]
    assert rebuilt["domain"] == incremental["domain"]
    assert rebuilt["month"] == incremental["month"]
    assert rebuilt["total"] == incremental["total"]
    assert rebuilt["day"] == incremental["day"]
    assert rebuilt["week"] == incremental["week"]
    assert rebuilt["events"] == incremental["events"]
    assert MessageStat.objects.get(message_id=ids[0]).domain == "one.example"
    assert MessageStat.objects.get(message_id=other[1]).domain == "two.example"

    # And the triggers keep working after a rebuild.
    Message.objects.filter(id=other[2]).update(state="bounced")
    rollups.fold()
    assert (
        DomainRollup.objects.get(
            campaign_id=second.pk, channel="portal", domain="two.example"
        ).bounced
        == 1
    )


def test_rebuild_command_audits(tracking_buffer):
    from django.core.management import call_command

    from luxmail.models import AuditEvent

    started_campaign(2)
    call_command("rebuild_rollups")
    assert AuditEvent.objects.filter(action="reports.rollups_rebuild").exists()


def test_engagement_in_sql_equals_message_engagement():
    """The SQL fold (triggers, rebuild) and classification.message_engagement agree."""
    rng = random.Random(6)
    campaign, ids = started_campaign(30)
    rank = LABEL_RANK
    expected = {}
    events = []
    now = timezone.now()
    for number, message_id in enumerate(ids):
        sequence = [
            (rng.choice(["open", "click"]), rng.choice(["human", "unknown", "automated"]))
            for _ in range(rng.randint(0, 6))
        ]
        engagement = message_engagement(sequence)
        expected[message_id] = (
            rank[engagement.open_label] if engagement.open_label else 0,
            rank[engagement.click_label] if engagement.click_label else 0,
            *(engagement.counts.get(name, 0) for name in rollups.ENGAGEMENT_COLUMNS[2:]),
        )
        for i, (kind, label) in enumerate(sequence):
            events.append(
                Event(
                    message_id=message_id,
                    campaign_id=campaign.pk,
                    kind=kind,
                    label=label,
                    reason="test",
                    ruleset_version="t",
                    occurred_at=now,
                    source_id=f"test:{number}:{i}",
                )
            )
    Event.objects.bulk_create(events)
    ingest.message_engagement_refresh(message_ids=ids)
    found = dict(
        (row[0], tuple(row[1:]))
        for row in MessageStat.objects.filter(message_id__in=ids).values_list(
            "message_id", *rollups.ENGAGEMENT_COLUMNS
        )
    )
    assert found == expected
