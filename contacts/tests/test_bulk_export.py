"""Issue 20: the bulk "export" action — a background job that freezes the contacts, and a
CSV written on download for its creator only, with the export page's PHI rules and audit."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from contacts import search, services
from contacts.models import BulkJob, BulkJobStatus
from contacts.services import bulk
from luxmail import roles
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db

PEOPLE = [
    {"email": "ana.ruiz@example.org", "first_name": "Ana", "last_name": "Ruiz"},
    {"email": "ben.okafor@example.org", "first_name": "Ben", "last_name": "Okafor"},
    {"email": "=cmd@example.org", "first_name": "=HYPERLINK(1)", "last_name": "Eve"},
]


@pytest.fixture
def people(make_user):
    admin = make_user(roles.ADMIN)
    return [services.contact_create(data=row, actor=admin) for row in PEOPLE]


def start_export(client, django_capture_on_commit_callbacks, data):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("contacts:bulk"), {"action": "export", **data})
    assert response.status_code == 302, response.content
    return BulkJob.objects.order_by("-id").first()


def rows_of(response):
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-selection')
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_phi_user_exports_a_selection_with_phi(
    staff_client, people, django_capture_on_commit_callbacks
):
    client = staff_client(roles.PHI_MARKETER)
    job = start_export(
        client,
        django_capture_on_commit_callbacks,
        {"scope": "selected", "contact": [people[0].pk, people[2].pk], "export_phi": "on"},
    )
    assert (job.status, job.total, job.changed) == (BulkJobStatus.SUCCEEDED, 2, 2)
    assert "ana" not in str(job.params).lower()  # the job row keeps ids only
    page = client.get(reverse("contacts:bulk_job", args=[job.uuid])).content.decode()
    url = reverse("contacts:bulk_download", args=[job.uuid])
    assert url in page
    audits_before = AuditEvent.objects.filter(action="contacts.export").count()
    rows = rows_of(client.get(url))
    assert sorted(r["email"] for r in rows) == ["'=cmd@example.org", "ana.ruiz@example.org"]
    assert {r["first_name"] for r in rows} == {"Ana", "'=HYPERLINK(1)"}  # formulas neutralized
    event = AuditEvent.objects.filter(action="contacts.export").latest("id")
    assert AuditEvent.objects.filter(action="contacts.export").count() == audits_before + 1
    assert event.details["phi"] is True and event.details["scope"] == "selection"
    assert AuditEvent.objects.filter(action="phi.access").exists()


def test_user_without_phi_export_gets_masked_columns_of_the_filter_result(
    staff_client, people, django_capture_on_commit_callbacks
):
    client = staff_client(roles.MARKETER)
    job = start_export(
        client, django_capture_on_commit_callbacks, {"scope": "all", "export_phi": "on"}
    )
    assert job.contact_ids is None and job.total == 3
    rows = rows_of(client.get(reverse("contacts:bulk_download", args=[job.uuid])))
    assert len(rows) == 3 and "email (masked)" in rows[0] and "email" not in rows[0]
    assert "ana.ruiz@example.org" not in str(rows)


def test_download_is_for_the_creator_only_and_expires(
    staff_client, people, django_capture_on_commit_callbacks
):
    owner = staff_client(roles.PHI_MARKETER)
    job = start_export(
        owner, django_capture_on_commit_callbacks, {"scope": "selected", "contact": [people[1].pk]}
    )
    url = reverse("contacts:bulk_download", args=[job.uuid])
    assert staff_client(roles.ADMIN).get(url).status_code == 404  # even an admin
    assert staff_client(roles.PHI_MARKETER).get(url).status_code == 404
    assert staff_client(roles.VIEWER).get(url).status_code == 404
    assert owner.post(url).status_code == 405
    BulkJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - dt.timedelta(days=2))
    assert owner.get(url).status_code == 404
    assert url not in owner.get(reverse("contacts:bulk_job", args=[job.uuid])).content.decode()


def test_forged_and_unknown_ids_are_not_exported(
    staff_client, people, django_capture_on_commit_callbacks
):
    client = staff_client(roles.PHI_MARKETER)
    job = start_export(
        client,
        django_capture_on_commit_callbacks,
        {"scope": "selected", "contact": [people[0].pk, 987_654_321, "1 OR 1=1"]},
    )
    assert job.params["ids"] == [people[0].pk]
    people[0].delete()  # deleted after the job: not resurrected in the file
    rows = rows_of(client.get(reverse("contacts:bulk_download", args=[job.uuid])))
    assert rows == []


def test_export_of_a_huge_filter_result_is_refused(people, make_user, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_EXPORT", 2)
    with pytest.raises(bulk.BulkError, match="at most 2"):
        bulk.bulk_job_start(
            action="export",
            params={},
            query=search.ContactQuery(),
            actor=make_user(roles.ADMIN),
        )
