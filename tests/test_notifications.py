"""Notification triggers (issue 20 item 5), per-person read state and the optional
e-mail per preference.

Each source is driven through its own service: a campaign finishing, an approval
request, an import failing or finishing with row errors, and a key rotation falling
due; the portal reply and the auto-pause have theirs in portal/tests/test_conversations.py
and tests/test_feedback_autopause.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignStatus
from campaigns.tests import conftest as campaigns_fixtures
from campaigns.tests.factories import make_campaign, make_contacts
from contacts.imports.services.common import _fail
from contacts.models import ImportJob
from luxmail import audit, notifications, roles
from luxmail.models import AuditEvent, Notification, NotificationRead, User
from luxmail.testing import require

postgres = campaigns_fixtures.postgres
admin = campaigns_fixtures.admin

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def kinds() -> list[str]:
    return list(Notification.objects.order_by("id").values_list("kind", flat=True))


def test_a_campaign_finishing_notifies_once(postgres, admin) -> None:
    campaign = make_campaign(contact_ids=make_contacts(1), actor=admin)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SENDING)
    assert services.campaign_finish_if_done(campaign_id=campaign.pk)
    assert not services.campaign_finish_if_done(campaign_id=campaign.pk)  # already sent
    note = Notification.objects.get(kind="campaign_finished")
    assert campaign.name in note.title and note.link == f"/campaigns/{campaign.pk}/"
    # An API message's hidden campaign finishes after every message: not news.
    hidden = make_campaign(contact_ids=make_contacts(1, prefix="t"), actor=admin)
    Campaign.objects.filter(pk=hidden.pk).update(status=CampaignStatus.SENDING, transactional=True)
    assert services.campaign_finish_if_done(campaign_id=hidden.pk)
    assert Notification.objects.filter(kind="campaign_finished").count() == 1


def test_an_approval_request_notifies(postgres, admin) -> None:
    campaign = make_campaign(
        contact_ids=make_contacts(1),
        actor=admin,
        html="<p>{{ phi.primary_provider }}</p><p><a href='{{ unsubscribe_url }}'>u</a></p>",
        approved=False,
    )
    assert "approval_requested" not in kinds()
    services.approval_request(campaign=campaign, actor=admin)
    note = Notification.objects.get(kind="approval_requested")
    assert note.link == f"/campaigns/{campaign.pk}/approval/"


def test_a_failed_or_erroneous_import_notifies_but_a_refused_upload_does_not(postgres) -> None:
    running = ImportJob.objects.create(status="running", file_format="csv")
    _fail(running, "The import stopped.")
    previewing = ImportJob.objects.create(status="previewing", file_format="csv")
    _fail(previewing, "The file could not be read.")
    notes = list(Notification.objects.filter(kind="import_errors"))
    assert [n.title for n in notes] == [f"Contact import #{running.pk} failed."]
    assert str(running.uuid) in notes[0].link


def test_key_rotation_due_once_per_period(postgres, admin) -> None:
    audit.record("test.start")
    now = timezone.now()
    assert notifications.key_rotation_check() is None
    with time_machine.travel(now + dt.timedelta(days=400), tick=False):
        note = notifications.key_rotation_check()
        assert note is not None and note.kind == "key_rotation_due" and "400 days" in note.title
    with time_machine.travel(now + dt.timedelta(days=401), tick=False):
        assert notifications.key_rotation_check() is None  # once per period
        audit.record("crypto.rotate", details={"rewritten": 0})
    with time_machine.travel(now + dt.timedelta(days=402), tick=False):
        assert notifications.key_rotation_check() is None  # just rotated
    assert Notification.objects.filter(kind="key_rotation_due").count() == 1


def test_email_goes_only_to_those_who_asked_for_that_kind(
    postgres, make_user: Any, mailoutbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    wants = make_user(roles.ADMIN, username="wants")
    make_user(roles.ADMIN, username="quiet")
    notifications.preferences_set(
        user=wants, kinds=["campaign_finished", "no_such_kind"], actor=wants
    )
    assert notifications.email_kinds(user=wants) == ["campaign_finished"]
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify(kind="campaign_finished", title="Campaign “X” finished.", link="/c/1/")
        notifications.notify(kind="import_errors", title="Contact import #1 failed.", link="/i/")
    assert [m.to for m in mailoutbox] == [["wants@staff.example"]]
    assert "Campaign “X” finished." in mailoutbox[0].subject
    assert "/c/1/" in mailoutbox[0].body
    assert AuditEvent.objects.filter(action="notification.emailed").count() == 1


def test_pages_mark_one_read_and_save_preferences(postgres, staff_client: Any) -> None:
    client = staff_client(roles.MARKETER)
    first = notifications.notify(kind="campaign_finished", title="First finished.", link="/")
    notifications.notify(kind="campaign_finished", title="Second finished.", link="/")
    listing = client.get("/notifications/")
    assert listing.status_code == 200 and b"Second finished." in listing.content
    response = client.post(f"/notifications/{first.pk}/read/", {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/notifications/"
    user = client.user
    assert [n.read_at is not None for n in notifications.listed(user=user)] == [False, True]
    assert notifications.unread_count(user=user) == 1
    page = client.post("/notifications/preferences/", {"kinds": ["portal_reply"]})
    assert page.status_code == 302
    assert notifications.email_kinds(user=client.user) == ["portal_reply"]
    form = client.get("/notifications/preferences/").content.decode()
    assert form.count("checked") == 1 and 'value="portal_reply"' in form


def test_read_state_is_per_person(postgres, staff_client: Any) -> None:
    alice = staff_client(roles.ADMIN, username="alice")
    bob = staff_client(roles.MARKETER, username="bob")
    first = notifications.notify(kind="campaign_finished", title="First finished.", link="/")
    notifications.notify(kind="import_errors", title="Import #2 failed.", link="/")
    assert b'aria-label="2 unread"' in alice.get("/notifications/").content
    # Alice reads one: Bob still has both unread.
    alice.post(f"/notifications/{first.pk}/read/")
    assert notifications.unread_count(user=alice.user) == 1
    assert notifications.unread_count(user=bob.user) == 2
    assert not notifications.mark_read(notification_id=first.pk, actor=alice.user)  # again
    # Bob marks all read: only his; Alice keeps her unread one.
    bob_page = bob.post("/notifications/", follow=True).content
    assert b"unread" not in bob_page.split(b"<main")[0]  # no badge in the navigation
    assert notifications.unread_count(user=bob.user) == 0
    assert notifications.unread_count(user=alice.user) == 1
    assert [n.title for n in notifications.listed(user=alice.user, unread_only=True)] == [
        "Import #2 failed."
    ]
    assert notifications.mark_all_read(actor=bob.user) == 0  # idempotent, no audit row
    reads = AuditEvent.objects.filter(action="notification.read").order_by("id")
    assert [e.details["count"] for e in reads] == [1, 2]
    # A new notification is unread for both; the API key / task label marks nothing.
    notifications.notify(kind="portal_reply", title="A patient replied.", link="/")
    assert notifications.unread_count(user=bob.user) == 1
    assert notifications.mark_all_read(actor="task:test") == 0
    assert NotificationRead.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_what_someone_had_read_read_for_every_existing_account() -> None:
    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")
    before = [("luxmail", "0011_org_footer_text")]
    after = [("luxmail", "0012_notification_reads_per_user")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    reader = old.get_model("luxmail", "User").objects.create(username="reader")
    old.get_model("luxmail", "User").objects.create(username="other")
    shared = old.get_model("luxmail", "Notification")
    was_read = shared.objects.create(
        kind="campaign_finished", title="Read.", read_at=timezone.now(), read_by=reader
    )
    unread = shared.objects.create(kind="campaign_finished", title="Unread.")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    users = list(User.objects.order_by("username"))
    assert [u.username for u in users] == ["other", "reader"]
    for user in users:
        assert notifications.unread_count(user=user) == 1
        assert [n.pk for n in notifications.listed(user=user, unread_only=True)] == [unread.pk]
    assert NotificationRead.objects.filter(notification_id=was_read.pk).count() == 2
    # And back: the earliest read becomes the shared mark again.
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    rows = old.get_model("luxmail", "Notification").objects.order_by("id")
    assert [r.read_at is not None for r in rows] == [True, False]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
