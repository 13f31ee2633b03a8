"""Both ends of the audit chain are anchored by signed checkpoints (issue 12, item 3).

Truncation is done as a DBA could: with the append-only trigger disabled on real
PostgreSQL. Before checkpoints, deleting the newest or the oldest events left a
chain that still linked up, and ``audit_verify`` reported it intact.
"""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from luxmail import audit, audit_checkpoints, roles, tasks
from luxmail.models import AuditEvent
from luxmail.testing import require

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _postgres():
    require(connection.vendor == "postgresql", "needs PostgreSQL (DISABLE TRIGGER)")


def _fill(n):
    return [audit.record("test.event", details={"n": i}) for i in range(n)]


def _delete_as_dba(where, params):
    """Delete audit rows the way a database owner could: trigger off, DELETE, trigger on."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE luxmail_auditevent DISABLE TRIGGER luxmail_audit_append_only")
        cursor.execute(f"DELETE FROM luxmail_auditevent WHERE {where}", params)  # noqa: S608
        cursor.execute("ALTER TABLE luxmail_auditevent ENABLE TRIGGER luxmail_audit_append_only")


def _verify_command():
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def test_happy_path_verifies_and_writes_signed_linked_checkpoints():
    _fill(4)
    assert "Audit chain intact" in _verify_command()
    _fill(3)
    assert "Audit chain intact" in _verify_command()
    lines = audit_checkpoints.path().read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert second["prev"] == first["sig"]
    assert second["count"] == AuditEvent.objects.filter(id__lte=second["last_id"]).count()
    assert second["first_id"] == AuditEvent.objects.order_by("id").first().pk
    latest = audit_checkpoints.latest()
    assert latest.line == 2 and latest.reason == "verify"


def test_deleting_the_newest_events_is_detected():
    events = _fill(6)
    _verify_command()
    _delete_as_dba("id >= %s", [events[4].pk])
    with pytest.raises(CommandError, match=r"newest events are missing.*ends the chain at event"):
        _verify_command()


def test_deleting_the_newest_events_then_appending_is_detected():
    events = _fill(6)
    _verify_command()  # its own audit.verify event is now the newest row
    newest = AuditEvent.objects.order_by("-id").first().pk
    _delete_as_dba("id >= %s", [events[3].pk])
    _fill(5)  # the chain links up again and is longer than before
    assert AuditEvent.objects.order_by("-id").first().pk > newest
    result = audit.verify()
    assert not result.ok and "newest events are missing" in result.message


def test_deleting_the_oldest_events_is_detected():
    events = _fill(6)
    _verify_command()
    first = AuditEvent.objects.order_by("id").first().pk
    _delete_as_dba("id <= %s", [events[1].pk])
    with pytest.raises(CommandError, match=rf"oldest events are missing.*#{first}"):
        _verify_command()


def test_a_failed_verification_writes_no_checkpoint_and_the_beat_task_refuses():
    events = _fill(5)
    audit.verify()
    lines_before = audit_checkpoints.path().read_text()
    _delete_as_dba("id = %s", [events[-1].pk])
    assert not audit.verify().ok
    with pytest.raises(audit.AuditChainError, match="newest events are missing"):
        tasks.audit_checkpoint.delay()
    assert audit_checkpoints.path().read_text() == lines_before, "tampering was blessed"


def test_the_beat_task_appends_a_checkpoint_when_the_chain_holds():
    _fill(3)
    tasks.audit_checkpoint.delay()
    _fill(2)
    tasks.audit_checkpoint.delay()
    latest = audit_checkpoints.latest()
    assert latest.line == 2 and latest.reason == "periodic"
    assert latest.last_id == AuditEvent.objects.order_by("-id").first().pk
    assert latest.count == AuditEvent.objects.count()
    assert audit.verify().ok


def test_a_tampered_checkpoint_line_is_detected():
    _fill(3)
    audit.verify()
    _fill(2)
    audit.verify()
    path = audit_checkpoints.path()
    lines = path.read_text().splitlines()
    record = json.loads(lines[0])
    record["count"] -= 1  # as if to excuse one deleted event
    path.write_text("\n".join([json.dumps(record), lines[1]]) + "\n")
    with pytest.raises(CommandError, match="line 1: its signature does not verify"):
        _verify_command()


def test_a_removed_checkpoint_line_is_detected():
    for _ in range(3):
        _fill(2)
        audit.verify()
    path = audit_checkpoints.path()
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    result = audit.verify()
    assert not result.ok and "line 2 does not follow line 1" in result.message


def test_a_checkpoint_signed_with_another_key_is_refused(settings):
    _fill(2)
    audit.verify()
    settings.LUXMAIL_AUDIT_CHECKPOINT_KEYS = "other:" + "k" * 40
    result = audit.verify()
    assert not result.ok and "signed with key 'derived', which is not set" in result.message


def test_retention_purge_writes_its_own_checkpoint(django_capture_on_commit_callbacks):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    with time_machine.travel(timezone.now() - timedelta(days=7 * 365), tick=True):
        _fill(3)
    _fill(2)
    assert audit.verify().ok
    with django_capture_on_commit_callbacks(execute=True):
        assert audit.purge_expired() == 3
    assert audit_checkpoints.latest().reason == "purge"
    assert audit.verify().ok


def test_compliance_page_shows_last_verification_and_checkpoint(staff_client):
    officer = staff_client(roles.COMPLIANCE_OFFICER)
    page = officer.get(reverse("audit")).content.decode()
    assert "never verified" in page and "none yet" in page
    _fill(2)
    officer.post(reverse("audit_verify"))
    page = officer.get(reverse("audit")).content.decode()
    assert "<strong>intact</strong>" in page
    checkpoint = audit_checkpoints.latest()
    assert f"#{checkpoint.first_id} to #{checkpoint.last_id}" in page
    _delete_as_dba("id >= %s", [checkpoint.last_id])
    response = officer.post(reverse("audit_verify"), follow=True)
    page = response.content.decode()
    assert "<strong>failed</strong>" in page and "newest events are missing" in page


def test_an_unusable_checkpoint_directory_is_a_clear_failure_not_an_error(
    settings, tmp_path, staff_client
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.LUXMAIL_AUDIT_CHECKPOINT_DIR = blocker / "checkpoints"
    _fill(2)
    result = audit.verify()
    assert not result.ok and "checkpoint file cannot be read (Not a directory)" in result.message
    officer = staff_client(roles.COMPLIANCE_OFFICER)
    response = officer.post(reverse("audit_verify"), follow=True)
    assert response.status_code == 200
    assert "checkpoint file cannot be read" in response.content.decode()
