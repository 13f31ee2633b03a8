"""The queue's lease writes are HOT updates when the page has room (issue 16).

A claim and a lease renewal change only ``claim_token`` and ``lease_until``; no index of
``campaigns_message`` has either as a key or in its condition, and the partitions leave
room on each page (``MESSAGE_FILLFACTOR``), so PostgreSQL updates those rows in place
(heap-only tuples): no new entry in any of the table's indexes. Counted with
``pg_stat_xact_user_tables`` (this transaction's own updates), not timed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Message, MessageState
from campaigns.sending import queue
from campaigns.tests.factories import make_campaign, make_contacts

pytestmark = [pytest.mark.postgres]

QUEUED = 600  # several full pages
CLAIMED = 6  # the first rows of the first page: their versions fit in its free space


@pytest.fixture
def queued_campaign(postgres: None) -> int:
    campaign = make_campaign(contact_ids=make_contacts(1))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_message (campaign_id, state, attempts, smtp_reply, channel, "
            "channel_reason, queued_at) SELECT %s, 'queued', 0, '', '', '', now() "
            "FROM generate_series(1, %s)",
            [campaign.pk, QUEUED],
        )
    return campaign.pk


def _updates(table: str = "campaigns_message") -> tuple[int, int]:
    """(updates, of which HOT) on ``table`` (its partitions) in this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(n_tup_upd), 0), COALESCE(SUM(n_tup_hot_upd), 0) "
            "FROM pg_stat_xact_user_tables WHERE relid IN "
            "(SELECT relid FROM pg_partition_tree(%s::regclass)) OR relid = %s::regclass",
            [table, table],
        )
        updated, hot = cursor.fetchone()
    return int(updated), int(hot)


def test_claim_and_lease_renewal_are_hot_updates(queued_campaign: int) -> None:
    before = _updates()
    token, claimed = queue.claim(campaign_id=queued_campaign, limit=CLAIMED, lease_seconds=30)
    assert len(claimed) == CLAIMED
    after_claim = _updates()
    assert after_claim[0] - before[0] == CLAIMED
    assert after_claim[1] - before[1] == CLAIMED, "the claim's lease write was not HOT"

    renewed = queue.renew_batch(token=token, lease_seconds=60, ids=[c.id for c in claimed])
    assert renewed == CLAIMED
    after_renewal = _updates()
    assert after_renewal[1] - after_claim[1] == CLAIMED, "the lease renewal was not HOT"

    # A state change is not HOT (``state`` is indexed) and still works as before.
    marked = queue.mark_sending(token=token, ids=[c.id for c in claimed], lease_seconds=30)
    assert sorted(marked) == [c.id for c in claimed]
    assert Message.objects.filter(state=MessageState.SENDING).count() == CLAIMED

    # The outcome moves each message's report row (reporting_messagestat, one per
    # message, bulk-inserted with the messages) to ``sent``: ``state`` is in none of
    # that table's indexes, and its pages have room, so those updates are HOT too.
    before_stats = _updates("reporting_messagestat")
    written = queue.write_results(
        token=token, results=[queue.Result(c.id, MessageState.SENT, code=250) for c in claimed]
    )
    assert written == CLAIMED
    after_stats = _updates("reporting_messagestat")
    assert after_stats[0] - before_stats[0] == CLAIMED
    assert after_stats[1] - before_stats[1] == CLAIMED, "the report rows' update was not HOT"


def test_recovery_sweep_finds_rows_in_flight_by_index(queued_campaign: int) -> None:
    """The sweep reads ``message_in_flight`` (rows ``sending``), not every message."""
    token, claimed = queue.claim(campaign_id=queued_campaign, limit=CLAIMED, lease_seconds=30)
    queue.mark_sending(token=token, ids=[c.id for c in claimed], lease_seconds=30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_message")
        cursor.execute(
            "SELECT tableoid::regclass::text FROM campaigns_message WHERE id = %s", [claimed[0].id]
        )
        partition = cursor.fetchone()[0]
    for campaign_id in (queued_campaign, None):
        rows = Message.objects.filter(state=MessageState.SENDING, lease_until__lt=timezone.now())
        if campaign_id is not None:
            rows = rows.filter(campaign_id=campaign_id)
        plan: Any = json.loads(rows.explain(format="json"))
        scans = [n for n in _nodes(plan[0]["Plan"]) if n.get("Relation Name") == partition]
        assert scans and all("Index Name" in n for n in scans), scans
        # Empty months (nothing to read) may be scanned; the one holding rows is not.


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found
