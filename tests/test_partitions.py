"""Monthly partitions of messages and tracking events (issue 16 §2, luxmail/partitions.py):
the migrations convert populated tables, beat creates months ahead (and moves rows that
waited in the default partition), retention drops a whole month only when nothing in it
is held, and the send queue's claim and the reports work on the partitioned tables.

Real PostgreSQL: partitioning exists only there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from campaigns.models import BounceEvent, Campaign, DeliveryProof, Message, MessageState
from campaigns.models.sending import MESSAGE_FILLFACTOR
from campaigns.sending import queue
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import holds, partitions, retention
from luxmail.models import HoldScope
from luxmail.testing import require
from reporting import reports
from reporting.models import Event, MessageStat
from reporting.tests.helpers import mark_sent, started_campaign

pytestmark = [pytest.mark.postgres]

MESSAGES = "campaigns_message"
EVENTS = "reporting_event"


@pytest.fixture
def pg(db) -> None:
    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")


def _partition_of(table: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def _fillfactor(name: str) -> str | None:
    """A partition's fillfactor storage parameter (None: the default, 100)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT option_value FROM pg_class c, pg_options_to_table(c.reloptions) "
            "WHERE c.relname = %s AND option_name = 'fillfactor'",
            [name],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _event(message: Message, when: datetime, source: str) -> Event:
    return Event.objects.create(
        message=message,
        campaign_id=message.campaign_id,
        kind="open",
        occurred_at=when,
        label="human",
        reason="test",
        ruleset_version="t",
        source_id=source,
    )


def test_messages_and_events_are_partitioned_by_month(pg) -> None:
    this_month = partitions.month_start(timezone.now())
    for table in (MESSAGES, EVENTS):
        assert partitions.is_partitioned(table)
        names = [p.name for p in partitions.partitions_list(table)]
        assert partitions.partition_name(table, this_month) in names
        assert f"{table}_default" in names
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'message_one_per_contact'"
        )
        assert cursor.fetchone()[0] == "UNIQUE (campaign_id, contact_id, queued_at)"


def test_claim_and_reports_work_on_partitioned_tables(pg) -> None:
    campaign, ids = started_campaign(4)
    _token, claimed = queue.claim(campaign_id=campaign.pk, limit=10, lease_seconds=60)
    assert [row.id for row in claimed] == ids
    assert not any(row.blocked for row in claimed)
    # A second worker finds nothing left to claim while the lease holds.
    assert queue.claim(campaign_id=campaign.pk, limit=10, lease_seconds=60)[1] == []
    assert _partition_of(MESSAGES, ids[0]) == partitions.partition_name(
        MESSAGES, partitions.month_start(timezone.now())
    )
    mark_sent(ids[:3])
    # The rollup triggers moved to the partitioned table with it.
    assert MessageStat.objects.filter(message_id__in=ids, state="sent").count() == 3
    row = reports.totals(
        filters=reports.Filters(campaign_ids=(campaign.pk,)), counting=reports.HUMAN_ONLY
    )
    assert row.sent == 3


def test_beat_creates_months_ahead_and_moves_rows_waiting_in_default(pg, settings) -> None:
    settings.LUXMAIL_PARTITION_MONTHS_AHEAD = 2
    future = datetime(2031, 5, 17, tzinfo=UTC)
    campaign = make_campaign(contact_ids=make_contacts(1))
    early = Message.objects.create(campaign=campaign, contact=None)
    Message.objects.filter(pk=early.pk).update(queued_at=future + timedelta(days=20))  # June
    assert _partition_of(MESSAGES, early.pk) == f"{MESSAGES}_default"

    created = partitions.partitions_ensure(now=future)

    for table in (MESSAGES, EVENTS):
        for month in ("203105", "203106", "203107"):
            assert f"{table}_p{month}" in created
    assert _partition_of(MESSAGES, early.pk) == f"{MESSAGES}_p203106"
    assert Message.objects.filter(pk=early.pk).exists()
    # New message months leave room on each page for HOT lease writes (created empty
    # or from rows moved out of the default partition); event months are append-only.
    for month in ("203105", "203106", "203107"):
        assert _fillfactor(f"{MESSAGES}_p{month}") == str(MESSAGE_FILLFACTOR)
        assert _fillfactor(f"{EVENTS}_p{month}") is None
    assert partitions.partitions_ensure(now=future) == []  # idempotent


def test_beat_schedules_partition_creation(settings) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["partitions-ensure"]
    assert entry["task"] == "luxmail.partitions_ensure"


@pytest.fixture
def old_month(pg):
    """Messages, proofs, bounces and events queued in one month long past retention,
    in their own partitions (as beat would have created them then)."""
    month = partitions.month_start(timezone.now() - timedelta(days=800))
    partitions.partitions_ensure(now=month, months_ahead=0)
    when = month + timedelta(days=3)
    ids = make_contacts(3)
    campaign = make_campaign(contact_ids=ids)
    other = make_campaign(contact_ids=ids)
    rows = []
    for owner in (campaign, other):
        for cid in ids:
            m = Message.objects.create(campaign=owner, contact_id=cid, state=MessageState.SENT)
            rows.append(m)
    Message.objects.filter(pk__in=[m.pk for m in rows]).update(queued_at=when, finished_at=when)
    for m in rows:
        DeliveryProof.objects.create(message=m, host="relay.test", route="relay", replied_at=when)
        BounceEvent.objects.create(message=m, contact_id=m.contact_id, kind="soft", source="api")
        _event(m, when, f"part-{m.pk}")
    return {"month": month, "campaign": campaign, "other": other, "messages": rows}


def test_retention_drops_a_whole_expired_month(old_month) -> None:
    name = partitions.partition_name(MESSAGES, old_month["month"])
    messages = old_month["messages"]
    assert _partition_of(MESSAGES, messages[0].pk) == name

    result = retention.retention_run()

    by_name = {r.name: r for r in result.results}
    assert by_name["messages"].partitions == 1
    assert by_name["events"].partitions == 1
    assert by_name["messages"].deleted == len(messages)
    names = [p.name for p in partitions.partitions_list(MESSAGES)]
    assert name not in names
    assert partitions.partition_name(EVENTS, old_month["month"]) not in [
        p.name for p in partitions.partitions_list(EVENTS)
    ]
    assert not Message.objects.filter(pk__in=[m.pk for m in messages]).exists()
    # What pointed at the messages followed their on_delete: proofs deleted, bounces kept
    # without the message; report rows stay (retention keeps reports).
    assert not DeliveryProof.objects.filter(message_id__in=[m.pk for m in messages]).exists()
    assert not BounceEvent.objects.filter(message_id__in=[m.pk for m in messages]).exists()
    assert MessageStat.objects.filter(message_id__in=[m.pk for m in messages]).count() == len(
        messages
    )


def test_a_hold_keeps_the_month_and_row_deletes_take_the_rest(old_month, make_user) -> None:
    admin = make_user()
    held = old_month["other"]
    holds.legal_hold_place(
        scope=HoldScope.CAMPAIGN, object_id=held.pk, reason="Audit request", actor=admin
    )

    result = retention.retention_run()

    by_name = {r.name: r for r in result.results}
    assert by_name["messages"].partitions == 0
    assert by_name["events"].partitions == 0
    name = partitions.partition_name(MESSAGES, old_month["month"])
    assert name in [p.name for p in partitions.partitions_list(MESSAGES)]
    kept = Message.objects.filter(pk__in=[m.pk for m in old_month["messages"]])
    assert set(kept.values_list("campaign_id", flat=True)) == {held.pk}
    assert kept.count() == 3
    assert Event.objects.filter(campaign_id=held.pk).count() == 3
    assert not Event.objects.filter(campaign_id=old_month["campaign"].pk).exists()


@pytest.mark.django_db(transaction=True)
def test_migrations_convert_populated_tables_and_back() -> None:
    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")
    before = [("campaigns", "0008_campaign_approval"), ("reporting", "0012_proxyrangelist")]
    after = [("campaigns", "0009_message_partitioned"), ("reporting", "0013_event_partitioned")]
    campaign, ids = started_campaign(3)
    mark_sent(ids)
    when = timezone.now() - timedelta(days=400)  # a month no partition exists for yet
    Message.objects.filter(pk=ids[0]).update(queued_at=when)
    events = [_event(Message.objects.get(pk=i), when, f"mig-{i}") for i in ids]
    stats = MessageStat.objects.filter(message_id__in=ids).count()

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    assert not partitions.is_partitioned(MESSAGES)
    assert not partitions.is_partitioned(EVENTS)
    assert Message.objects.filter(pk__in=ids).count() == 3

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert partitions.is_partitioned(MESSAGES) and partitions.is_partitioned(EVENTS)
    assert Message.objects.filter(pk__in=ids).count() == 3
    assert Event.objects.filter(pk__in=[e.pk for e in events]).count() == 3
    # The old month got its own partition; copying fired no rollup trigger twice.
    month = partitions.partition_name(MESSAGES, partitions.month_start(when))
    assert _partition_of(MESSAGES, ids[0]) == month
    assert MessageStat.objects.filter(message_id__in=ids).count() == stats
    # Every message partition, the converted old month's too, got the fillfactor.
    assert _fillfactor(month) == _fillfactor(f"{MESSAGES}_default") == str(MESSAGE_FILLFACTOR)
    # New rows keep numbering after the copied ones, and the triggers still run.
    newer, more = started_campaign(2)
    assert min(more) > max(ids)
    assert MessageStat.objects.filter(message_id__in=more).count() == 2
    assert newer.pk != campaign.pk


def test_contact_history_spans_months_newest_first(pg) -> None:
    from reporting import selectors

    contact = make_contacts(1)[0]
    older = make_campaign(contact_ids=[contact])
    newer = make_campaign(contact_ids=[contact])
    first = Message.objects.create(campaign=older, contact_id=contact, state=MessageState.SENT)
    second = Message.objects.create(campaign=newer, contact_id=contact, state=MessageState.SENT)
    long_ago = timezone.now() - timedelta(days=200)  # another month: another partition
    Message.objects.filter(pk=first.pk).update(queued_at=long_ago)
    _event(Message.objects.get(pk=first.pk), long_ago + timedelta(hours=1), "hist-1")
    _event(second, timezone.now(), "hist-2")

    history = selectors.contact_history(contact_id=contact)

    assert [row["id"] for row in history] == [second.pk, first.pk]
    assert [len(row["events"]) for row in history] == [1, 1]
    assert history[1]["campaign__name"] == older.name
    assert selectors.contact_history(contact_id=contact, limit=1)[0]["id"] == second.pk


def test_claim_prunes_the_months_before_the_campaign(pg) -> None:
    this_month = partitions.month_start(timezone.now())
    for back in range(1, 4):  # older months exist, as after a year in production
        partitions.partitions_ensure(now=partitions.add_months(this_month, -back), months_ahead=0)
    campaign, ids = started_campaign(3)
    since = queue.claim_since(campaign.pk)
    # The bound holds for every message the start queued (the database's clock) ...
    assert not Message.objects.filter(campaign=campaign, queued_at__lt=since).exists()
    params = {"campaign": campaign.pk, "limit": 10, "since": since, "now": timezone.now()}
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + queue.CANDIDATES_SQL, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # ... and the planner leaves out the months before it (the month before may stay
    # in when the campaign started in a month's first day).
    assert partitions.partition_name(MESSAGES, this_month) in plan
    for back in (2, 3):
        older = partitions.add_months(this_month, -back)
        assert partitions.partition_name(MESSAGES, older) not in plan
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    _token, claimed = queue.claim(campaign_id=campaign.pk, limit=10, lease_seconds=60)
    assert [row.id for row in claimed] == ids


def test_a_chunks_step_prunes_the_months_before_the_campaign(pg) -> None:
    """step() (the previous chunk's outcomes, this chunk's mark, the lease renewal) is
    planned per chunk: bounded by the claim's lower bound and a day past now, it plans
    this month's partitions, not three updates over every month of the year behind and
    the months created ahead."""
    this_month = partitions.month_start(timezone.now())
    for back in range(1, 4):
        partitions.partitions_ensure(now=partitions.add_months(this_month, -back), months_ahead=0)
    ahead = partitions.add_months(this_month, 6)  # months created ahead are empty
    partitions.partitions_ensure(now=ahead, months_ahead=0)
    campaign, ids = started_campaign(4)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    token, claimed = queue.claim(campaign_id=campaign.pk, limit=10, lease_seconds=60)
    assert [row.id for row in claimed] == ids
    sql, params = queue.step_statement(
        token=token,
        campaign_id=campaign.pk,
        results=[queue.Result(ids[0], MessageState.SENT, code=250)],
        sending=ids[1:3],
        lease_seconds=60,
        renew=ids[3:],
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert partitions.partition_name(MESSAGES, this_month) in plan
    for back in (2, 3):
        older = partitions.add_months(this_month, -back)
        assert partitions.partition_name(MESSAGES, older) not in plan
    assert partitions.partition_name(MESSAGES, ahead) not in plan
    # And the step does its work: the outcome written, the chunk marked, the rest renewed.
    marked = queue.step(
        token=token,
        campaign_id=campaign.pk,
        results=[queue.Result(ids[0], MessageState.SENT, code=250)],
        sending=ids[1:3],
        lease_seconds=60,
        renew=ids[3:],
    )
    assert sorted(marked) == ids[1:3]
    states = dict(Message.objects.filter(pk__in=ids).values_list("pk", "state"))
    assert [states[i] for i in ids] == ["sent", "sending", "sending", "queued"]
