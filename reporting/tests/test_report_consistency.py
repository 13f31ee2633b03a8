"""Unique opened never exceeds total opens, in any split (issue 12, item 10).

The report showed "Opened (unique) 47" above "Opens (total) 45": a click counts as
an open for the unique count (a click implies the message was opened, at the click's
label) but the total counted open *events* only, so clicks without a pixel load (images
blocked) and human clicks after an Apple MPP proxy fetch raised the unique count alone.
"""

from __future__ import annotations

import random

import pytest
from django.utils import timezone

from campaigns import services
from luxmail import org
from reporting import ingest, reports
from reporting.classification import Label, message_engagement
from reporting.models import Event
from reporting.tests.helpers import mark_sent, started_campaign

pytestmark = pytest.mark.django_db

COUNTINGS = [(True, False), (True, True), (False, True)]
LABELS = ("human", "unknown", "automated")

# Deterministic cases first (one per message), then random sequences.
CASES = [
    [("click", "human")],  # images blocked: a click, no pixel
    [("open", "automated"), ("click", "human")],  # Apple MPP fetch, then a person
    [("click", "automated")],  # a link scanner only
    [("open", "automated"), ("click", "unknown")],
    [("click", "unknown"), ("click", "human")],
    [("open", "human"), ("open", "human"), ("click", "human")],
    [("open", "unknown")],
    [("open", "automated")],
    [],
]


def _sender(email):
    return services.sender_create(
        name=f"Sender {email}", from_name="Clinic", from_email=email, actor=None
    )


def _events(campaign, message_ids, rng):
    events = []
    now = timezone.now()
    for number, message_id in enumerate(message_ids):
        if number < len(CASES):
            sequence = CASES[number]
        else:
            sequence = [
                (rng.choice(["open", "click"]), rng.choice(LABELS))
                for _ in range(rng.randint(0, 5))
            ]
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
                    source_id=f"consistency:{message_id}:{i}",
                )
            )
    Event.objects.bulk_create(events)


@pytest.fixture
def generated():
    rng = random.Random(12)
    senders = [_sender("news@clinic.example"), _sender("care@clinic.example")]
    every = []
    for n, (domain, field) in enumerate(
        [("alpha.example", "north"), ("beta.example", "south"), ("gamma.example", "north")]
    ):
        campaign, ids = started_campaign(
            24,
            domain=domain,
            subject=f"Subject {n % 2}",
            sender=senders[n % 2],
            report_field=field,
            marketing_id=f"M-{n}",
        )
        mark_sent(ids)
        _events(campaign, ids, rng)
        every += ids
    ingest.message_engagement_refresh(message_ids=every)
    return every


def _check(row, counting, where):
    assert row.opened <= row.opens, f"{where}: opened {row.opened} > opens {row.opens}"
    assert row.clicked <= row.clicks, f"{where}: clicked {row.clicked} > clicks {row.clicks}"
    for label in LABELS:
        opened, opens = row.metrics[f"opened_{label}"], row.metrics[f"opens_{label}"]
        assert opened <= opens, f"{where}: opened_{label} {opened} > opens_{label} {opens}"


@pytest.mark.parametrize(("exclude", "unknown"), COUNTINGS)
def test_unique_opened_never_exceeds_total_opens_in_any_split(generated, exclude, unknown):
    org.org_settings_update(
        actor=None, exclude_automated_events=exclude, count_unknown_events=unknown
    )
    counting = reports.Counting.from_settings()
    total = reports.totals(filters=reports.Filters(), counting=counting)
    assert total.opened > 0
    _check(total, counting, "total")
    for name in reports.SPLITS:
        rows = reports.split(filters=reports.Filters(), by=name, counting=counting)
        assert rows, name
        for row in rows:
            _check(row, counting, f"{name}={row.label}")
    # The custom report field filtered to one value, and one recipient domain.
    for filters in (reports.Filters(report_field="north"), reports.Filters(domain="beta.example")):
        for name in ("campaign", "subject", "from_address"):
            for row in reports.split(filters=filters, by=name, counting=counting):
                _check(row, counting, f"{filters} {name}={row.label}")


def test_a_click_without_an_open_counts_one_open_at_its_label():
    only_click = message_engagement([("click", "human")])
    assert only_click.counts == {"clicks_human": 1, "opens_human": 1}
    mpp_then_person = message_engagement([("open", "automated"), ("click", "human")])
    assert mpp_then_person.open_label is Label.HUMAN
    assert mpp_then_person.counts == {"opens_automated": 1, "clicks_human": 1, "opens_human": 1}
    opened_and_clicked = message_engagement([("open", "human"), ("click", "human")])
    assert opened_and_clicked.counts == {"opens_human": 1, "clicks_human": 1}
