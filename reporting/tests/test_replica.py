"""Report reads go through the ``replica`` alias when one is configured.

Under test the alias mirrors ``default`` (luxmail/settings.py): a second connection to
the same PostgreSQL database. The tests run without the wrapping test transaction so
that connection sees the scenario's rows.
"""

from __future__ import annotations

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign
from luxmail import replica
from reporting import reports
from reporting.tests.test_reports import scenario  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def _captured(function):
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as secondary,
    ):
        result = function()
    return (
        result,
        [q["sql"] for q in primary.captured_queries],
        [q["sql"] for q in secondary.captured_queries],
    )


def _report():
    counting = reports.Counting.from_settings()
    return (
        reports.totals(filters=reports.Filters(), counting=counting),
        reports.split(filters=reports.Filters(), by="domain", counting=counting),
        reports.activity(filters=reports.Filters()),
    )


def test_report_selectors_read_through_the_replica(scenario, settings):  # noqa: F811
    settings.LUXMAIL_REPLICA_READS = False
    expected, primary, secondary = _captured(_report)
    assert secondary == [] and any("reporting_" in sql for sql in primary)

    settings.LUXMAIL_REPLICA_READS = True
    found, primary, secondary = _captured(_report)
    assert any("reporting_" in sql for sql in secondary)
    assert not any("reporting_" in sql for sql in primary)
    totals, rows, activity = found
    assert totals.opened == expected[0].opened and totals.sent == expected[0].sent
    assert [r.value("sent") for r in rows] == [r.value("sent") for r in expected[1]]
    assert activity == expected[2]


def test_writes_and_reads_in_a_write_transaction_stay_on_the_primary(settings):
    settings.LUXMAIL_REPLICA_READS = True
    router = replica.ReplicaRouter()
    assert router.db_for_read(Campaign) == "default"  # not inside a report selector
    assert replica.reads(lambda: router.db_for_read(Campaign))() == "replica"
    assert replica.reads(lambda: router.db_for_write(Campaign))() == "default"
    with transaction.atomic():
        assert replica.reads(lambda: router.db_for_read(Campaign))() == "default"
    assert not router.allow_migrate("replica", "campaigns")
    settings.LUXMAIL_REPLICA_READS = False
    assert replica.reads(lambda: router.db_for_read(Campaign))() == "default"
