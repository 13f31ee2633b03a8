"""Races of the send path, in process against real PostgreSQL and aiosmtpd (issue 11).

A batch whose lease expired while another worker reclaimed part of its chunk sends
only the rows the database still lets it mark.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from campaigns import services
from campaigns.models import Message, MessageState, SendChain
from campaigns.sending import delivery, queue
from campaigns.tests.factories import make_campaign, make_contacts
from campaigns.tests.smtp_fixtures import RecordingHandler, smtp_server

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


def test_expired_lease_reclaimed_mid_batch_never_sends_twice(postgres, sink, admin, settings):
    settings.LUXMAIL_SEND_CHUNK = 5
    ids = make_contacts(12)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    rescued: list[int] = []

    def expire_and_reclaim(count: int) -> None:
        if rescued:
            return
        # The first worker stalls: its lease runs out, and a second worker reclaims
        # three of the rows of its next chunk and sends them.
        Message.objects.filter(state=MessageState.QUEUED).update(
            lease_until=timezone.now() - timedelta(seconds=1)
        )
        rescued.append(delivery.send_batch(campaign_id=campaign.pk, limit=3).sent)

    first = delivery.send_batch(campaign_id=campaign.pk, limit=10, on_chunk=expire_and_reclaim)
    assert rescued == [3]
    # The first worker sent its first chunk and nothing of the second: the lease of the
    # two rows nobody reclaimed had expired too, so they were not its to send.
    assert first.sent == 5
    for _ in range(5):
        delivery.send_batch(campaign_id=campaign.pk, limit=50)
    received = Counter(sink.recipients())
    assert max(received.values()) == 1, f"delivered twice: {received.most_common(3)}"
    assert len(received) == 12
    assert Message.objects.filter(state=MessageState.SENT).count() == 12


def test_mark_sending_returns_only_rows_still_leased(postgres, sink, admin):
    ids = make_contacts(4)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    token, claimed = queue.claim(campaign_id=campaign.pk, limit=4, lease_seconds=60)
    rows = [c.id for c in claimed]
    Message.objects.filter(id=rows[0]).update(lease_until=timezone.now() - timedelta(seconds=1))
    Message.objects.filter(id=rows[1]).update(claim_token=None)
    marked = queue.mark_sending(token=token, ids=rows, lease_seconds=60)
    assert sorted(marked) == sorted(rows[2:])
    assert set(Message.objects.filter(id__in=rows[:2]).values_list("state", flat=True)) == {
        MessageState.QUEUED
    }


class SlowHandler(RecordingHandler):
    """An SMTP server that takes ``delay`` seconds to answer each DATA."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.django_db(transaction=True)
def test_slow_server_does_not_lose_the_lease(postgres, broker, admin, settings) -> None:
    # A 2 s lease, and a server needing ~3 s per chunk: only the heartbeat keeps the
    # batch's rows (in flight and waiting) from being recovered or reclaimed meanwhile.
    settings.LUXMAIL_SEND_LEASE_SECONDS = 2
    settings.LUXMAIL_SEND_CHUNK = 4
    with smtp_server(handler=SlowHandler(0.75)) as server:
        settings.LUXMAIL_SMTP_HOST = server.host
        settings.LUXMAIL_SMTP_PORT = server.port
        settings.LUXMAIL_SMTP_SECURITY = "none"
        settings.LUXMAIL_SMTP_USER = None
        ids = make_contacts(8)
        campaign = make_campaign(contact_ids=ids, actor=admin)
        # Its chains go to the broker, where no worker runs: this test drives the batches.
        services.campaign_start(campaign=campaign, actor=admin)

        def slow_worker() -> None:
            try:
                delivery.send_batch(campaign_id=campaign.pk)
            finally:
                db_connection.close()

        worker = threading.Thread(target=slow_worker)
        worker.start()
        while not Message.objects.filter(claim_token__isnull=False).exists():
            worker.join(0.05)  # the slow batch claims everything first
        competing = Counter[str]()
        while worker.is_alive():
            # What the sweep and another worker do all along.
            competing["unknown"] += queue.recover_expired(campaign_id=campaign.pk)
            competing["claimed"] += delivery.send_batch(campaign_id=campaign.pk).claimed
            worker.join(0.3)
        from campaigns.sending.transport import pool

        pool().close_all()
    assert +competing == Counter(), "the slow batch lost its lease"
    assert sorted(r for m in server.messages for r in m.rcpt_tos) == sorted(
        f"p{i}@example.test" for i in range(8)
    )
    assert set(Message.objects.values_list("state", flat=True)) == {MessageState.SENT}


def test_chain_slots_cap_the_chains_and_fence_superseded_ones(postgres, admin) -> None:
    campaign = make_campaign(contact_ids=make_contacts(1), actor=admin)
    first = queue.chain_acquire(campaign_id=campaign.pk, slots=2, lease_seconds=60)
    second = queue.chain_acquire(campaign_id=campaign.pk, slots=2, lease_seconds=60)
    assert first and second and {first[0], second[0]} == {0, 1}
    assert queue.chain_acquire(campaign_id=campaign.pk, slots=2, lease_seconds=60) is None
    assert queue.chains_live(campaign_id=campaign.pk) == 2
    # The first chain's worker dies: its slot expires and a new chain takes it over.
    SendChain.objects.filter(campaign=campaign, slot=first[0]).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    third = queue.chain_acquire(campaign_id=campaign.pk, slots=2, lease_seconds=60)
    assert third is not None and third[0] == first[0] and third[1] != first[1]
    # The old chain's next task finds its token superseded and must stop.
    assert not queue.chain_renew(campaign_id=campaign.pk, slot=first[0], token=first[1], seconds=60)
    assert queue.chain_renew(campaign_id=campaign.pk, slot=third[0], token=third[1], seconds=60)
    queue.chain_release(campaign_id=campaign.pk, slot=second[0], token=second[1])
    assert queue.chains_live(campaign_id=campaign.pk) == 1
