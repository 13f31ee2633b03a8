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

from campaigns.models import Message
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


CONTACTS = 5000
CLAIM = 1000


def test_a_claims_eligibility_checks_read_contacts_by_key(postgres: None) -> None:
    """With fresh statistics and more contacts than a batch, each claimed row's contact,
    suppression and consent are looked up by key: the planner no longer hashes every
    contact and every consent of the organization for each batch. The checks still
    block exactly the ineligible rows."""
    campaign = make_campaign(contact_ids=make_contacts(1))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_contact (uuid, email_bidx, domain, status, time_zone, "
            "created_at, updated_at) SELECT gen_random_uuid(), decode(md5('plan' || i), 'hex'), "
            "'plan.test', 'active', '', now(), now() FROM generate_series(1, %s) i",
            [CONTACTS],
        )
        cursor.execute(
            "INSERT INTO contacts_consent (uuid, purpose, source, evidence_ref, granted_at, "
            "recorded_at, revocation_source, contact_id) SELECT gen_random_uuid(), 'marketing', "
            "'import', '', now() - interval '1 day', now(), '', id FROM contacts_contact "
            "WHERE domain = 'plan.test'"
        )
        cursor.execute(
            "INSERT INTO campaigns_message (campaign_id, contact_id, state, attempts, smtp_reply, "
            "channel, channel_reason, queued_at) SELECT %s, id, 'queued', 0, '', '', '', now() "
            "FROM contacts_contact WHERE domain = 'plan.test' ORDER BY id LIMIT %s",
            [campaign.pk, CLAIM],
        )
        cursor.execute(
            "ANALYZE contacts_contact, contacts_consent, contacts_suppression, campaigns_message"
        )
        cursor.execute(
            "SELECT id, contact_id FROM campaigns_message WHERE campaign_id = %s ORDER BY id",
            [campaign.pk],
        )
        rows = cursor.fetchall()
        params = {
            "token": uuid.uuid4(),
            "lease": 30,
            "purpose": "marketing",
            "since": queue.claim_since(campaign.pk),
            "ids": queue._int_array([r[0] for r in rows]),
        }
        cursor.execute("EXPLAIN (FORMAT JSON) " + queue._CLAIM_SQL, params)
        raw = cursor.fetchone()[0]
        # One contact revoked its consent, one is no longer active, one is suppressed.
        revoked, inactive, suppressed = (r[1] for r in rows[1:4])
        cursor.execute(
            "UPDATE contacts_consent SET revoked_at = now() WHERE contact_id = %s", [revoked]
        )
        cursor.execute(
            "UPDATE contacts_contact SET status = 'unsubscribed' WHERE id = %s", [inactive]
        )
        cursor.execute(
            "INSERT INTO contacts_suppression (email_bidx, reason, note, removal_note, "
            "created_at) SELECT email_bidx, 'manual', '', '', now() FROM contacts_contact "
            "WHERE id = %s",
            [suppressed],
        )
    document = json.loads(raw) if isinstance(raw, str) else raw
    scans = {
        n["Relation Name"]: n["Node Type"]
        for n in _nodes(document[0]["Plan"])
        if n.get("Relation Name") in ("contacts_contact", "contacts_consent")
    }
    assert set(scans) == {"contacts_contact", "contacts_consent"}
    assert "Seq Scan" not in scans.values(), scans
    _token, claimed = queue.claim(campaign_id=campaign.pk, limit=CLAIM + 10, lease_seconds=30)
    blocked = {c.contact_id for c in claimed if c.blocked}
    assert len(claimed) == len(rows)
    assert blocked == {revoked, inactive, suppressed}
    assert all(c.blocked is False for c in claimed if c.contact_id not in blocked)


def test_the_heartbeat_renews_a_batch_by_primary_key(stale_campaign: int) -> None:
    """The heartbeat's renewal finds the batch's rows by key, not by reading every open
    row of the campaign (the claim token has no index)."""
    token, claimed = queue.claim(campaign_id=stale_campaign, limit=BATCH, lease_seconds=30)
    ids = [c.id for c in claimed]
    other, _rows = queue.claim(campaign_id=stale_campaign, limit=BATCH, lease_seconds=30)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM campaigns_message WHERE id = %s", [ids[0]]
        )
        partition = cursor.fetchone()[0]
    # A few ids, as for the chunk's mark: with 100 of 6,000 rows a scan is fair. (Empty
    # months may be scanned too: nothing to read.)
    rows = queue.batch_rows(token=token, ids=ids[:20])
    document = json.loads(rows.explain(format="json"))
    scans = [n for n in _nodes(document[0]["Plan"]) if n.get("Relation Name") == partition]
    assert scans and all(n.get("Index Name", "").endswith("_pkey") for n in scans), scans
    # Renewed: exactly the batch's rows, not another batch's.
    renewed = queue.renew_batch(token=token, lease_seconds=60, ids=ids)
    assert renewed == BATCH
    stolen = queue.renew_batch(token=other, lease_seconds=60, ids=ids)
    assert stolen == 0
    leases = set(
        Message.objects.filter(id__in=ids).values_list("lease_until", flat=True).distinct()
    )
    assert len(leases) == 1
