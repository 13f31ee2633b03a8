"""Retention and legal hold (issue 17 §1): the purge deletes what expired, in batches,
skips what a hold covers, counts and audits, keeps report rows; dry run deletes nothing.

Real PostgreSQL (the reporting triggers and the purge's transaction flag are part of
what is tested).
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import BounceEvent, DeliveryProof, Message, MessageState
from campaigns.tests.factories import make_campaign, make_contacts
from contacts.models import ImportJob
from luxmail import crypto, holds, org, retention
from luxmail.models import AuditEvent, HoldScope, LegalHold
from luxmail.testing import require
from portal.models import PortalMessage
from reporting.models import Event, MessageStat

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

OLD = timedelta(days=800)  # past the 730-day defaults


@pytest.fixture
def pg(db) -> None:
    from django.db import connection

    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")


def _old_messages(campaign, contact_ids: list[int]) -> list[Message]:
    when = timezone.now() - OLD
    rows = [
        Message.objects.create(campaign=campaign, contact_id=cid, state=MessageState.SENT)
        for cid in contact_ids
    ]
    Message.objects.filter(pk__in=[m.pk for m in rows]).update(queued_at=when, finished_at=when)
    for m in rows:
        DeliveryProof.objects.create(message=m, host="relay.test", route="relay", replied_at=when)
        Event.objects.create(
            message=m,
            campaign=campaign,
            kind="open",
            occurred_at=when,
            label="human",
            reason="test",
            ruleset_version="t",
            source_id=f"test-{m.pk}",
        )
        BounceEvent.objects.create(message=m, contact_id=m.contact_id, kind="soft", source="api")
    BounceEvent.objects.filter(message__in=rows).update(received_at=when)
    return rows


@pytest.fixture
def world(pg, make_user):
    admin = make_user()
    ids = make_contacts(6)
    held_contact, *others = ids
    campaign = make_campaign(contact_ids=ids, actor=admin)
    held_campaign = make_campaign(contact_ids=ids[:2], actor=admin)
    messages = _old_messages(campaign, ids)
    held_campaign_messages = _old_messages(held_campaign, ids[:2])
    recent = Message.objects.create(campaign=held_campaign, contact_id=ids[2], state="sent")
    # Hold the first contact and the second campaign.
    holds.legal_hold_place(
        scope=HoldScope.CONTACT, object_id=held_contact, reason="Matter 2026-014", actor=admin
    )
    holds.legal_hold_place(
        scope=HoldScope.CAMPAIGN, object_id=held_campaign.pk, reason="Audit request", actor=admin
    )
    return {
        "admin": admin,
        "held_contact": held_contact,
        "others": others,
        "campaign": campaign,
        "held_campaign": held_campaign,
        "messages": messages,
        "held_campaign_messages": held_campaign_messages,
        "recent": recent,
    }


def test_dry_run_counts_and_deletes_nothing(world) -> None:
    before = Message.objects.count(), Event.objects.count(), BounceEvent.objects.count()
    audits = AuditEvent.objects.count()
    result = retention.retention_run(dry_run=True)
    by_name = {r.name: r for r in result.results}
    # 6 old messages in the unheld campaign, 1 of them the held contact's; the held
    # campaign's 2 old ones are held too.
    assert by_name["messages"].deleted == 5
    assert by_name["messages"].held == 3
    assert by_name["events"].deleted == 5
    assert by_name["bounces"].deleted == 5
    assert (Message.objects.count(), Event.objects.count(), BounceEvent.objects.count()) == before
    assert AuditEvent.objects.count() == audits


def test_held_contact_survives_a_purge_and_unheld_ones_go(world, settings) -> None:
    settings.LUXMAIL_RETENTION_BATCH = 2  # several batches
    stats_before = MessageStat.objects.count()
    result = retention.retention_run()
    left = set(Message.objects.values_list("pk", flat=True))
    held_msg = next(m for m in world["messages"] if m.contact_id == world["held_contact"])
    assert held_msg.pk in left
    for m in world["messages"]:
        if m.contact_id != world["held_contact"]:
            assert m.pk not in left
    assert {m.pk for m in world["held_campaign_messages"]} <= left
    assert world["recent"].pk in left
    # The held rows keep their proof, events and bounces; the deleted ones' went.
    assert DeliveryProof.objects.filter(message=held_msg).exists()
    assert Event.objects.filter(message=held_msg).exists()
    assert Event.objects.count() == 3 and BounceEvent.objects.count() == 3
    # Reports keep counting the purged messages (rollups are aggregates).
    assert MessageStat.objects.count() == stats_before
    by_name = {r.name: r for r in result.results}
    assert by_name["messages"].deleted == 5 and by_name["messages"].held == 3
    event = AuditEvent.objects.filter(action="retention.purge").latest("id")
    assert event.details["purges"]["messages"]["deleted"] == 5
    assert event.details["holds"] == {"organization": 0, "campaigns": 1, "contacts": 1}
    # A second run finds nothing more.
    again = {r.name: r.deleted for r in retention.retention_run().results}
    assert again["messages"] == 0


def test_organization_hold_suspends_every_purge(world) -> None:
    holds.legal_hold_place(scope=HoldScope.ORGANIZATION, reason="Litigation", actor=world["admin"])
    count = Message.objects.count()
    result = retention.retention_run()
    assert Message.objects.count() == count
    assert all(r.deleted == 0 for r in result.results)


def test_released_hold_lets_the_purge_run(world) -> None:
    hold = LegalHold.objects.get(scope=HoldScope.CONTACT)
    holds.legal_hold_release(hold=hold, reason="Matter closed", actor=world["admin"])
    with pytest.raises(holds.HoldError):
        holds.legal_hold_release(hold=hold, reason="again", actor=world["admin"])
    retention.retention_run()
    assert not Message.objects.filter(campaign=world["campaign"]).exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"legal_hold.place", "legal_hold.release", "retention.purge"} <= actions


def test_batches_are_bounded_per_run(world, settings) -> None:
    settings.LUXMAIL_RETENTION_BATCH = 2
    settings.LUXMAIL_RETENTION_MAX_BATCHES = 1
    result = retention.retention_run()
    messages = {r.name: r for r in result.results}["messages"]
    assert messages.deleted == 2 and messages.remaining == 3 and messages.held == 3


def _portal_message(*, expires_at, link: bytes) -> PortalMessage:
    row = PortalMessage(link_hash=link * 32, expires_at=expires_at)
    for name in ("recipient_email", "subject", "html", "text"):
        crypto.seal(row, name, "synthetic")
    row.save()
    return row


def test_portal_messages_and_imports_expire(pg) -> None:
    settings_obj = org.get_settings()
    long_ago = timezone.now() - timedelta(days=settings_obj.portal_retention_days + 1)
    portal = _portal_message(expires_at=long_ago, link=b"x")
    fresh = _portal_message(expires_at=timezone.now(), link=b"y")
    job = ImportJob.objects.create(status="succeeded", file_format="csv")
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=400))
    running = ImportJob.objects.create(status="running", file_format="csv", file_path="x.csv")
    ImportJob.objects.filter(pk=running.pk).update(created_at=timezone.now() - timedelta(days=400))
    retention.retention_run()
    assert not PortalMessage.objects.filter(pk=portal.pk).exists()
    assert PortalMessage.objects.filter(pk=fresh.pk).exists()
    assert not ImportJob.objects.filter(pk=job.pk).exists()
    assert ImportJob.objects.filter(pk=running.pk).exists()


def test_command_prints_what_would_go_and_what_is_held(world) -> None:
    out = StringIO()
    call_command("retention_purge", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Dry run: nothing is deleted." in text
    assert "Delivery records (messages)" in text and "would delete 5, held 3" in text
    assert f"contacts #{world['held_contact']}" in text
    assert f"campaigns #{world['held_campaign'].pk}" in text
    assert Message.objects.filter(campaign=world["campaign"]).count() == 6


def test_beat_schedules_the_purge(settings) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["retention-purge"]
    assert entry["task"] == "luxmail.retention_purge"


def test_holds_are_visible_and_managed_on_the_pages(world, staff_client) -> None:
    client = staff_client("Compliance Officer")
    campaign = world["held_campaign"]
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Legal hold" in page and "Audit request" in page
    from contacts.models import Contact

    contact = Contact.objects.get(pk=world["held_contact"])
    page = client.get(f"/contacts/{contact.uuid}/").content.decode()
    assert "Matter 2026-014" in page
    # Place an organization hold from the settings banner's form, as an Admin.
    admin = staff_client("Admin")
    response = admin.post(
        "/settings/legal-holds/place/",
        {
            "scope": "organization",
            "object_id": "0",
            "reason": "Regulator inquiry",
            "next": "/settings/",
        },
    )
    assert response.status_code == 302
    settings_page = admin.get("/settings/").content.decode()
    assert "whole organization is on legal hold" in settings_page
    assert "Evidence-pack signing key" in settings_page
    # A Marketer may not place holds.
    marketer = staff_client("Marketer")
    denied = marketer.post(
        "/settings/legal-holds/place/", {"scope": "contact", "object_id": "1", "reason": "x"}
    )
    assert denied.status_code == 403


def test_a_held_contact_cannot_be_deleted(world, staff_client) -> None:
    from contacts.models import Contact

    contact = Contact.objects.get(pk=world["held_contact"])
    admin = staff_client("Admin")
    response = admin.post(f"/contacts/{contact.uuid}/delete/")
    assert response.status_code == 302
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert "legal hold" in admin.get(f"/contacts/{contact.uuid}/").content.decode()
    free = Contact.objects.get(pk=world["others"][0])
    admin.post(f"/contacts/{free.uuid}/delete/")
    assert not Contact.objects.filter(pk=free.pk).exists()


def test_the_beat_task_runs_the_purge(world) -> None:
    from luxmail import tasks

    tasks.retention_purge.delay()  # eager in unit tests: runs here, as a worker would
    assert not Message.objects.filter(pk=world["messages"][1].pk).exists()
    assert AuditEvent.objects.filter(action="retention.purge").exists()


@pytest.mark.parametrize(
    "form",
    [
        {"scope": "contact", "object_id": str(2**70), "reason": "x"},
        {"scope": "contact", "object_id": "-1", "reason": "x"},
        {"scope": "contact", "object_id": "0", "reason": "x"},
        {"scope": "planet", "object_id": "1", "reason": "x"},
        {"scope": "contact", "object_id": "1", "reason": "   "},
        {"scope": "contact", "object_id": "1", "reason": "x" * 5000},
        {"scope": "contact", "object_id": "abc", "reason": "x"},
    ],
)
def test_hostile_hold_requests_are_refused_politely(pg, staff_client, form) -> None:
    admin = staff_client("Admin")
    response = admin.post("/settings/legal-holds/place/", {**form, "next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == "/settings/"  # never an open redirect
    assert not LegalHold.objects.exists()
    release = admin.post(
        "/settings/legal-holds/00000000-0000-0000-0000-000000000000/release/", {"reason": "x"}
    )
    assert release.status_code == 404
