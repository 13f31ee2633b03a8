"""Races of the send path, in process against real PostgreSQL and aiosmtpd (issue 11).

A batch whose lease expired while another worker reclaimed part of its chunk sends
only the rows the database still lets it mark.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import delivery, queue, services
from campaigns.models import Message, MessageState
from campaigns.tests.factories import make_campaign, make_contacts

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
