import io
import itertools
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from luxmail import audit
from luxmail.models import AuditEvent


def _fill(n=5):
    return [audit.record("test.event", details={"n": i}) for i in range(n)]


@pytest.mark.django_db
def test_chain_links_each_event_to_the_previous():
    events = _fill(4)
    assert events[0].prev_hash in (
        audit.GENESIS_HASH,
        *AuditEvent.objects.values_list("hash", flat=True),
    )
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    result = audit.verify()
    assert result.ok and result.checked >= 4


@pytest.mark.django_db
def test_audit_verify_command_prints_count():
    _fill(3)
    before = AuditEvent.objects.count()
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "Audit chain intact" in out.getvalue()
    assert f"{before} events checked" in out.getvalue()
    # The verification itself is audited (the compliance page shows the newest).
    last = AuditEvent.objects.order_by("-id").first()
    assert last.action == "audit.verify" and last.details["ok"] is True


def _tamper(sql, params):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "ALTER TABLE luxmail_auditevent DISABLE TRIGGER luxmail_audit_append_only"
            )
            cursor.execute(sql, params)
            cursor.execute(
                "ALTER TABLE luxmail_auditevent ENABLE TRIGGER luxmail_audit_append_only"
            )
        else:
            cursor.execute("DROP TRIGGER luxmail_audit_no_update")
            cursor.execute(sql, params)


@pytest.mark.django_db
def test_edited_event_makes_audit_verify_fail_naming_it():
    events = _fill(5)
    victim = events[2]
    _tamper("UPDATE luxmail_auditevent SET details = %s WHERE id = %s", ['{"n": 99}', victim.pk])
    with pytest.raises(CommandError, match=f"event #{victim.pk}: its content does not match"):
        call_command("audit_verify", stdout=io.StringIO())


@pytest.mark.django_db
def test_deleted_event_breaks_the_chain_at_the_next_one():
    events = _fill(5)
    _tamper("DELETE FROM luxmail_auditevent WHERE id = %s", [events[2].pk])
    result = audit.verify()
    assert result.broken_event_id == events[3].pk
    assert "prev_hash" in result.reason


@pytest.mark.django_db
def test_orm_update_is_rejected_by_the_database():
    event = _fill(1)[0]
    event.action = "forged"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_rejects_update_and_delete():
    from luxmail.testing import require

    require(connection.vendor == "postgresql", "needs PostgreSQL (the trigger is PostgreSQL's)")
    event = _fill(1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


@pytest.mark.postgres
@pytest.mark.django_db
def test_purge_removes_only_events_past_six_years_and_chain_still_verifies():
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from luxmail.testing import require

    require(connection.vendor == "postgresql", "needs PostgreSQL (the purge path is PostgreSQL's)")
    with time_machine.travel(timezone.now() - timedelta(days=7 * 365), tick=True):
        old = _fill(3)
    young = _fill(2)
    assert audit.purge_expired() == 3
    remaining = set(AuditEvent.objects.values_list("pk", flat=True))
    assert not remaining & {e.pk for e in old}
    assert {e.pk for e in young} <= remaining
    purge = AuditEvent.objects.order_by("-id").first()
    assert purge.action == "audit.purge" and purge.details["anchor_hash"] == old[-1].hash
    assert audit.verify().ok


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_refuses_purging_young_events_even_if_the_app_clock_is_wrong():
    from datetime import timedelta

    from django.utils import timezone

    from luxmail.testing import require

    require(connection.vendor == "postgresql", "needs PostgreSQL (the purge path is PostgreSQL's)")
    events = _fill(2)
    with pytest.raises(DatabaseError, match="append-only"):
        audit.purge_expired(now=timezone.now() + timedelta(days=3650))
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in events]).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    from luxmail.testing import require

    require(connection.vendor == "postgresql", "needs PostgreSQL for concurrent writers")
    errors = []

    def writer(n):
        try:
            for i in range(15):
                audit.record("test.concurrent", details={"writer": n, "i": i})
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert AuditEvent.objects.filter(action="test.concurrent").count() == 90
    prevs = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(prevs) == len(set(prevs)), "two events share a parent: the chain forked"
    assert audit.verify().ok
