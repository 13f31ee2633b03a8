"""The send queue's statements keep their intended plans when PostgreSQL's statistics
are stale — the normal case right after a campaign is queued: ANALYZE last ran when
nothing was queued, so ``message_claimable`` looks empty to the planner.

Plans, not timings: the claim's candidates come from an ordered index walk that stops
after the batch (no sort of every claimable row), and a chunk's mark finds its rows by
primary key (not by walking every claimable row of every campaign).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from campaigns.sending import queue
from campaigns.tests.factories import make_campaign, make_contacts

QUEUED = 3000
BATCH = 100


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _explain(cursor: Any, sql: str, params: Any) -> list[dict[str, Any]]:
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
    raw = cursor.fetchone()[0]
    document = json.loads(raw) if isinstance(raw, str) else raw
    return _nodes(document[0]["Plan"])


@pytest.fixture
def stale_campaign(postgres: None) -> int:
    """A campaign whose QUEUED rows were added after ANALYZE saw none queued."""
    campaign = make_campaign(contact_ids=make_contacts(1))
    with connection.cursor() as cursor:
        insert = (
            "INSERT INTO campaigns_message (campaign_id, state, attempts, smtp_reply, channel, "
            "channel_reason, queued_at) SELECT %s, %s, 0, '', '', '', now() "
            "FROM generate_series(1, %s)"
        )
        cursor.execute(insert, [campaign.pk, "sent", QUEUED])
        cursor.execute("ANALYZE campaigns_message")
        cursor.execute(insert, [campaign.pk, "queued", QUEUED])
    return campaign.pk


def test_claim_candidates_walk_the_index_in_order(stale_campaign: int) -> None:
    params = {
        "campaign": stale_campaign,
        "since": queue.claim_since(stale_campaign),
        "now": timezone.now(),
        "limit": BATCH,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(queue.CLAIM_PLAN_SQL)
        nodes = _explain(cursor, queue.CANDIDATES_SQL, params)
    assert not [n for n in nodes if n["Node Type"] == "Sort"]
    scans = [n for n in nodes if n["Node Type"] == "Index Scan"]
    assert scans and sum(n["Actual Rows"] for n in scans) <= BATCH + 1
    # And the claim itself takes exactly a batch, in id order.
    _token, claimed = queue.claim(campaign_id=stale_campaign, limit=BATCH, lease_seconds=30)
    ids = [c.id for c in claimed]
    assert len(ids) == BATCH and ids == sorted(ids)


def test_a_chunks_mark_finds_its_rows_by_primary_key(stale_campaign: int) -> None:
    token, claimed = queue.claim(campaign_id=stale_campaign, limit=BATCH, lease_seconds=30)
    chunk = [c.id for c in claimed[:20]]
    with transaction.atomic(), connection.cursor() as cursor:
        nodes = _explain(
            cursor,
            queue._MARK_SQL,
            [30, chunk, token, stale_campaign, stale_campaign],
        )
        transaction.set_rollback(True)
    scans = [n for n in nodes if "Index Name" in n and "Relation Name" in n]
    message_scans = [n for n in scans if n["Relation Name"].startswith("campaigns_message")]
    assert message_scans
    assert all(n["Index Name"].endswith("_pkey") for n in message_scans)
    # Marked for real: exactly the chunk.
    assert sorted(queue.mark_sending(token=token, ids=chunk, lease_seconds=30)) == chunk
    assert queue.mark_sending(token=uuid.uuid4(), ids=chunk, lease_seconds=30) == []
