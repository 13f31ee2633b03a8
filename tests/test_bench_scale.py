"""bench/scale.py's generator against the current schema (not its timing).

The generator writes rows without model instances (COPY text, INSERT … SELECT): its
column lists come from the models, every column it does not know gets the field's
default. Loading a few rows here fails when a migration adds a NOT NULL column without a
default, renames a column the generator fills, or changes how a value must be written.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Message
from contacts import attributes
from contacts.models import Contact, ContactProfile, ContactTokenSet
from luxmail import crypto
from luxmail.testing import require
from reporting.models import Event

pytestmark = [pytest.mark.postgres]

_PATH = Path(__file__).resolve().parent.parent / "bench" / "scale.py"


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("bench_scale_under_test", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture
def pg(db) -> None:
    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")


def test_contacts_load_with_real_envelopes_and_the_services_tokens(scale, pg) -> None:
    assert scale._contacts_chunk((1, 6, 7)) == 5
    contact = Contact.objects.get(pk=3)
    assert contact.email_bidx == crypto.blind_index("email", contact_email(scale, 3))
    assert contact.status == "active" and contact.created_at is not None
    profile = ContactProfile.objects.get(pk=3)
    assert profile.uuid == contact.uuid and profile.custom == {}
    access = crypto.phi_access(actor=None, purpose="test.bench_scale", target=contact)
    zip_code = crypto.reveal(profile, "zip_code", access=access)
    assert len(zip_code) == 5
    tokens = set(ContactTokenSet.objects.get(pk=3).tokens)
    assert attributes.identity_tokens(first_name="First3", last_name="Last3", phone=None) <= tokens
    assert set(attributes.attribute_tokens("zip_code", zip_code)) <= tokens


def contact_email(scale, pk: int) -> str:
    return f"patient{pk}@{scale.DOMAINS[pk % len(scale.DOMAINS)]}"


def test_messages_and_events_load_into_the_partitioned_tables(scale, pg) -> None:
    scale._contacts_chunk((1, 11, 7))
    now = timezone.now().replace(microsecond=0)
    campaigns = scale._campaigns(now)
    newest = campaigns[-1]
    assert newest.status == "sending"
    assert newest.created_at < newest.started_at < now
    job = {
        "index": len(campaigns) - 1,
        "first_id": 1,
        "count": 10,
        "offset": 0,
        "campaign_id": newest.pk,
        "started": newest.started_at,
        "contacts": 10,
        "sending": True,
        "events_per_sent": 2.5,
    }
    messages, events = scale._messages_and_events(job)
    assert messages == 10 and events > 0
    rows = Message.objects.filter(campaign=newest)
    assert rows.filter(state="queued").count() == 3  # 30 % of the campaign still sending
    assert sorted(rows.values_list("contact_id", flat=True)) == list(range(1, 11))
    assert not rows.filter(queued_at__lt=newest.created_at).exists()
    assert Event.objects.filter(campaign_id=newest.pk).count() == events
    first = Event.objects.filter(campaign_id=newest.pk).order_by("occurred_at").first()
    assert first is not None
    assert first.occurred_at - newest.started_at >= dt.timedelta(minutes=40)
    assert Campaign.objects.filter(status="sent").count() >= len(campaigns) - 1


_PLAN = """\
Aggregate  (cost=32063.09..32063.10 rows=1 width=8) (actual time=150.318..150.320 rows=1 loops=1)
  Buffers: shared hit=396 read=16254 written=3337
  ->  Bitmap Heap Scan on contacts_contacttokenset  (cost=628.79..32036.27 rows=10729 width=0) (actual time=51.342..148.959 rows=18471 loops=1)
        Recheck Cond: (tokens && '{1}'::bigint[])
        Heap Blocks: exact=15879
        Buffers: shared hit=396 read=16254 written=3337
        ->  Bitmap Index Scan on contacts_tokenset_gin  (cost=0.00..626.11 rows=10729 width=0) (actual time=49.614..49.615 rows=18471 loops=1)
              Index Cond: (tokens && '{1}'::bigint[])
              Buffers: shared hit=396 read=375 written=77
Planning:
  Buffers: shared hit=132 read=31
Planning Time: 1.068 ms
Execution Time: 150.620 ms"""  # noqa: E501 - PostgreSQL's own line lengths


def test_plan_summary_separates_the_heap_pages_read_from_the_index_scan(scale) -> None:
    """The heap scan's own buffers are its node's minus the index scan's (not the
    planning section's), and "Heap Blocks" is reported as the pages the bitmap names."""
    summary = scale.plan_summary(_PLAN.splitlines())
    assert summary == {
        "index_ms": "49.615",
        "heap_hit": "0",
        "heap_read": "15879",
        "heap_pages": "15879",
        "execution_ms": "150.620",
    }


def test_plan_summary_without_a_bitmap_scan_says_unknown(scale) -> None:
    summary = scale.plan_summary(["Seq Scan on t", "Execution Time: 3.5 ms"])
    assert summary["heap_read"] == "?" and summary["index_ms"] == "?"
    assert summary["execution_ms"] == "3.5"
