"""The buffer and the ingester: nothing is lost, nothing stored twice, verdicts in context.

The "no event lost" proofs use the real stores: the event tables locked by another
PostgreSQL session while recipients click; Redis unreachable (the write-ahead table
takes over); Redis unreachable *and* the write-ahead table locked (the spool file).
"""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Message
from luxmail.testing import redis_answers, require
from reporting import buffer, ingest
from reporting.classification import LOOKBACK_SECONDS
from reporting.models import Event, MessageStat, PendingEvent, WebhookDelivery
from reporting.tests.helpers import (
    APPLE_MPP,
    BROWSER,
    built_html,
    click_path,
    drain,
    hit,
    mark_sent,
    open_path,
    started_campaign,
)

SCANNER_IP = "40.92.4.10"  # Microsoft EOP range in the seed list (scope clicks)


def _other_session():
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=False,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.redis
def test_no_event_is_lost_while_the_event_store_is_locked(client, tracking_buffer):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    require(
        buffer.redis_client() is not None and redis_answers(django_settings.REDIS_URL),
        "needs Redis",
    )
    campaign, ids = started_campaign(5)
    mark_sent(ids)
    built_html(campaign, ids[0])  # freezes the link plan (also cached in Redis)
    from reporting import tracking

    tracking.forget_plans()  # the web process knows nothing yet: Redis must answer

    blocker = _other_session()
    try:
        with blocker.cursor() as cursor:
            cursor.execute(
                "LOCK TABLE reporting_event, reporting_messagestat, reporting_trackedlink, "
                "campaigns_message IN ACCESS EXCLUSIVE MODE"
            )
        statuses = []
        for message_id in ids:
            statuses.append(hit(client, open_path(message_id, campaign.pk)).status_code)
            statuses.append(hit(client, click_path(message_id, campaign.pk, 2)).status_code)
        assert statuses == [200, 302] * 5
        assert buffer.stream_length() == 10
        # The ingester cannot store anything while the tables are locked: it waits
        # (bounded by a lock timeout here) and leaves every entry in the buffer.
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        with pytest.raises(Exception):  # noqa: B017 - psycopg's LockNotAvailable via Django
            ingest.ingest_batch()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
        assert buffer.stream_length() == 10
    finally:
        blocker.rollback()
        blocker.close()
    report = drain()
    assert report.stored == 10
    assert Event.objects.filter(kind="open").count() == 5
    assert Event.objects.filter(kind="click", label="human").count() == 5
    assert buffer.stream_length() == 0
    assert MessageStat.objects.filter(message_id__in=ids, click_label=4, open_label=4).count() == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_redis_down_falls_back_to_the_write_ahead_table(client, tracking_buffer, settings):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    campaign, ids = started_campaign(2)
    mark_sent(ids)
    built_html(campaign, ids[0])
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    buffer.reset()
    for message_id in ids:
        assert hit(client, open_path(message_id, campaign.pk)).status_code == 200
        assert hit(client, click_path(message_id, campaign.pk, 1)).status_code == 302
    assert PendingEvent.objects.count() == 4
    report = drain()
    assert (report.stored, PendingEvent.objects.count()) == (4, 0)
    assert Event.objects.filter(source_id__startswith="e:").count() == 4  # entry ids


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_redis_down_and_database_locked_spools_to_disk(client, tracking_buffer, settings):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    campaign, ids = started_campaign(3)
    mark_sent(ids)
    built_html(campaign, ids[0])
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    buffer.reset()
    blocker = _other_session()
    try:
        with blocker.cursor() as cursor:
            cursor.execute("LOCK TABLE reporting_pendingevent IN ACCESS EXCLUSIVE MODE")
        for message_id in ids:
            assert (
                hit(client, open_path(message_id, campaign.pk), agent=APPLE_MPP).status_code == 200
            )
        spooled = list(buffer.spool_files())
        assert len(spooled) == 1 and len(spooled[0].read_text().splitlines()) == 3
    finally:
        blocker.rollback()
        blocker.close()
    report = drain()
    assert report.stored == 3
    assert list(buffer.spool_files()) == []
    assert set(Event.objects.values_list("reason", flat=True)) == {"bare_user_agent"}


@pytest.mark.django_db
def test_ingestion_is_idempotent(client, tracking_buffer, monkeypatch):
    """A run that dies after its commit but before clearing the buffer stores nothing twice."""
    require(
        buffer.redis_client() is not None and redis_answers(django_settings.REDIS_URL),
        "needs Redis",
    )
    campaign, ids = started_campaign(1)
    mark_sent(ids)
    hit(client, open_path(ids[0], campaign.pk))
    hit(client, open_path(ids[0], campaign.pk))
    with monkeypatch.context() as patched:
        patched.setattr(buffer, "ack_stream", lambda source_ids: None)  # "crash" before XDEL
        assert drain().stored == 2
    assert buffer.stream_length() == 2
    report = drain()
    assert (report.stored, report.duplicates) == (0, 2)
    assert buffer.stream_length() == 0
    assert Event.objects.count() == 2


def _at(base: dt.datetime, seconds: float) -> float:
    return (base + dt.timedelta(seconds=seconds)).timestamp()


def _entry(kind, message_id, campaign_id, t, *, link=None, ua=BROWSER, ip="198.51.100.7", mt="GET"):
    entry = {"k": kind, "m": message_id, "c": campaign_id, "t": t, "ip": ip, "ua": ua, "mt": mt}
    if link is not None:
        entry["l"] = link
    buffer.append(entry)


@pytest.mark.django_db
def test_a_scanner_sweep_then_a_person_two_hours_later(tracking_buffer):
    """The sweep's first clicks looked human on their own; the third exposes them. The
    person's click two hours later is human, and upgrades the message to a human open."""
    campaign, ids = started_campaign(1)
    built_html(campaign, ids[0])
    sent = timezone.now() - dt.timedelta(hours=3)
    Message.objects.filter(id__in=ids).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    m, c = ids[0], campaign.pk
    scanner_ua = BROWSER  # scanners often pretend to be a browser
    for offset, link in ((30, 1), (31, 2)):
        _entry("c", m, c, _at(sent, offset), link=link, ua=scanner_ua, ip="203.0.113.9")
    assert drain().stored == 2
    assert set(Event.objects.values_list("label", flat=True)) == {"human"}
    _entry("c", m, c, _at(sent, 32), link=3, ua=scanner_ua, ip="203.0.113.9")
    report = drain()
    assert report.relabeled == 2
    assert list(Event.objects.order_by("occurred_at").values_list("label", "reason")) == [
        ("automated", "sweep_member"),
        ("automated", "sweep_member"),
        ("automated", "rapid_multi_link"),
    ]
    assert Event.objects.filter(relabeled_from="human:no_automation_signal").count() == 2
    stat = MessageStat.objects.get(message_id=m)
    assert (stat.open_label, stat.click_label, stat.clicks_automated, stat.clicks_human) == (
        1,
        1,
        3,
        0,
    )

    # Apple's proxy fetched the pixel; then the person clicks, two hours later.
    _entry("o", m, c, _at(sent, 40), ua=APPLE_MPP, ip="172.224.224.5")
    _entry("c", m, c, _at(sent, 2 * 3600), link=2, ua=BROWSER, ip="198.51.100.20")
    drain()
    last = Event.objects.order_by("-occurred_at").first()
    assert (last.label, last.reason) == ("human", "no_automation_signal")
    stat.refresh_from_db()
    assert (stat.open_label, stat.click_label) == (4, 4)  # human click ⇒ human open
    # Apple's fetch, plus the human open the click implies (unique ≤ total).
    assert (stat.opens_automated, stat.opens_human) == (1, 1)


@pytest.mark.django_db
def test_gateway_network_clicks_and_too_soon_clicks_are_automated(
    tracking_buffer, django_capture_on_commit_callbacks
):
    from reporting import proxy_ranges, services

    with django_capture_on_commit_callbacks(execute=True):  # the index rebuilds on commit
        services.proxy_ranges_replace(source="seed", specs=proxy_ranges.read_seed().ranges)
    campaign, ids = started_campaign(2)
    built_html(campaign, ids[0])
    sent = timezone.now() - dt.timedelta(minutes=30)
    Message.objects.filter(id__in=ids).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    _entry("c", ids[0], campaign.pk, _at(sent, 600), link=1, ip=SCANNER_IP)
    _entry("c", ids[1], campaign.pk, _at(sent, 2), link=1)
    drain()
    assert dict(Event.objects.values_list("message_id", "reason")) == {
        ids[0]: "gateway_network",
        ids[1]: "click_too_soon",
    }
    assert Event.objects.get(message_id=ids[0]).network == "microsoft_defender"


@pytest.mark.django_db
def test_lookback_reaches_events_stored_by_an_earlier_batch(tracking_buffer):
    campaign, ids = started_campaign(1)
    built_html(campaign, ids[0])
    sent = timezone.now() - dt.timedelta(hours=1)
    Message.objects.filter(id__in=ids).update(state="sent", sending_at=sent, finished_at=sent)
    base = sent + dt.timedelta(minutes=10)
    for i, ip in enumerate(("192.0.2.1", "192.0.2.2")):
        _entry("o", ids[0], campaign.pk, _at(base, i), ip=ip)
    drain()
    _entry("o", ids[0], campaign.pk, _at(base, 3), ip="192.0.2.3")
    drain()
    assert Event.objects.order_by("-occurred_at").first().reason == "multi_ip_burst"
    assert LOOKBACK_SECONDS >= 10


@pytest.mark.django_db
def test_opened_and_clicked_webhooks_carry_the_classification(tracking_buffer, make_user):
    from reporting import services

    admin = make_user("Admin")
    services.webhook_endpoint_create(
        name="CDP", url="https://cdp.example/hook", event_types=["opened", "clicked"], actor=admin
    )
    services.webhook_endpoint_create(
        name="Bounces only", url="https://crm.example/hook", event_types=["bounced"], actor=admin
    )
    campaign, ids = started_campaign(1, marketing_id="FLU-26")
    built_html(campaign, ids[0])
    mark_sent(ids)
    now = timezone.now()
    _entry("o", ids[0], campaign.pk, now.timestamp(), ua=APPLE_MPP)
    _entry("c", ids[0], campaign.pk, now.timestamp() + 60, link=1)
    report = drain()
    assert report.webhooks == 2
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [d.event_type for d in deliveries] == ["opened", "clicked"]
    opened = deliveries[0].payload
    assert opened["data"]["classification"]["label"] == "automated"
    assert opened["data"]["classification"]["reason"] == "bare_user_agent"
    assert opened["data"]["message_id"] == ids[0]
    assert opened["data"]["campaign_marketing_id"] == "FLU-26"
    assert deliveries[1].payload["data"]["classification"]["label"] == "human"
    text = str([d.payload for d in deliveries])
    assert "@" not in text and "198.51.100" not in text and "Mozilla" not in text


@pytest.mark.django_db
def test_portal_reads_are_verified_human_opens(tracking_buffer):
    from reporting import services

    campaign, ids = started_campaign(1)
    mark_sent(ids)
    services.portal_read_record(message_id=ids[0], campaign_id=campaign.pk)
    drain()
    event = Event.objects.get()
    assert (event.kind, event.label, event.reason, event.source) == (
        "open",
        "human",
        "portal_verified",
        "portal",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_only_one_ingester_runs_at_a_time(tracking_buffer):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    from reporting import rollups

    holder = _other_session()
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [rollups.INGEST_LOCK_ID])
        result: list[ingest.IngestReport] = []

        def run() -> None:
            try:
                result.append(ingest.ingest_batch())
            finally:
                connection.close()  # this thread's own connection

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(10)
        assert result and result[0].busy
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.django_db
def test_an_entry_in_two_buffers_is_stored_once(tracking_buffer):
    """Redis took the entry but its reply timed out, so it also went to the table."""
    require(
        buffer.redis_client() is not None and redis_answers(django_settings.REDIS_URL),
        "needs Redis",
    )
    campaign, ids = started_campaign(1)
    mark_sent(ids)
    entry = {
        "k": "o",
        "m": ids[0],
        "c": campaign.pk,
        "t": timezone.now().timestamp(),
        "ua": BROWSER,
    }
    assert buffer.append(dict(entry, i="0123456789abcdef")) == "redis"
    PendingEvent.objects.create(payload=buffer.encode(dict(entry, i="0123456789abcdef")))
    report = drain()
    assert (report.stored, report.duplicates) == (1, 1)
    assert Event.objects.get().source_id == "e:0123456789abcdef"
    assert (buffer.stream_length(), PendingEvent.objects.count()) == (0, 0)
