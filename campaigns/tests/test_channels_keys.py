"""Contacts get S/MIME certificates and OpenPGP keys through the UI, the API and import."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from campaigns.tests.smtp_fixtures import TestCA
from contacts.imports import services as imports
from contacts.models import Contact, ContactEncryptionKey, ImportJobStatus
from luxmail import roles
from luxmail.api.services import api_key_create
from luxmail.models import AuditEvent
from portal.tests.helpers import make_patient

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _address() -> str:
    return f"k.{uuid.uuid4().hex[:8]}@example.test"


def test_contact_keys_page_upload_and_remove(postgres, admin, staff_client, tmp_path):
    address = _address()
    patient = make_patient(address, actor=admin)
    certificate = TestCA(tmp_path).issue_email(address).cert_pem.decode()
    url = f"/contacts/{patient.uuid}/keys/"

    marketer = staff_client(roles.MARKETER)
    page = marketer.get(url)
    assert page.status_code == 200 and b"No certificate or key yet" in page.content
    assert b"Check and add" not in page.content  # no PHI permission: no form
    assert marketer.post(url, {"kind": "smime", "pasted": certificate}).status_code == 403

    phi = staff_client(roles.PHI_MARKETER)
    wrong = phi.post(url, {"kind": "pgp", "pasted": certificate})
    assert wrong.status_code == 400 and b"OpenPGP public key" in wrong.content
    added = phi.post(
        url, {"kind": "smime", "upload": SimpleUploadedFile("c.pem", certificate.encode())}
    )
    assert added.status_code == 302
    key = ContactEncryptionKey.objects.get(contact=patient)
    listing = phi.get(url).content.decode()
    assert key.fingerprint in listing and "active" in listing
    assert address not in listing  # the page shows no address or certificate subject
    assert phi.post(f"{url}{key.uuid}/remove/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_reason == "removed"
    assert AuditEvent.objects.filter(action="contact.key_remove").exists()


def test_contact_keys_api(postgres, admin, tmp_path):
    address = _address()
    patient = make_patient(address, actor=admin)
    ca = TestCA(tmp_path)
    payload = {"kind": "smime", "key": ca.issue_email(address).cert_pem.decode()}
    url = f"/api/v1/contacts/{patient.pk}/keys/"

    def client(*scopes: str) -> APIClient:
        issued = api_key_create(name="ehr", scopes=list(scopes), actor=admin)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        return api

    assert client("contacts:write").post(url, payload, format="json").status_code == 403
    writer = client("contacts:write", "phi:write", "contacts:read")
    mismatch = writer.post(
        url, {"kind": "smime", "key": ca.issue_email(_address()).cert_pem.decode()}, format="json"
    )
    assert mismatch.status_code == 400 and mismatch.json()["code"] == "email_mismatch"
    created = writer.post(url, payload, format="json")
    assert created.status_code == 201 and created.json()["kind"] == "smime"
    listed = client("contacts:read").get(url).json()
    assert [k["uuid"] for k in listed] == [created.json()["uuid"]]
    assert "material" not in listed[0] and "BEGIN" not in str(listed)
    gone = writer.delete(f"{url}{created.json()['uuid']}/")
    assert gone.status_code == 204
    assert ContactEncryptionKey.objects.get().revoked_at is not None


def test_import_column_adds_certificates_and_reports_bad_ones(
    postgres, admin, make_user, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.LUXMAIL_IMPORT_DIR = tmp_path / "imports"
    ca = TestCA(tmp_path / "ca")
    good, bad = _address(), _address()
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["email", "first_name", "smime_certificate"])
    writer.writerow([good, "Ada", ca.issue_email(good).cert_pem.decode()])
    writer.writerow([bad, "Bo", ca.issue_email(_address()).cert_pem.decode()])  # other address
    actor = make_user(roles.PHI_MARKETER)
    with django_capture_on_commit_callbacks(execute=True):  # the reading task runs
        job = imports.import_job_create(
            uploaded=SimpleUploadedFile("keys.csv", rows.getvalue().encode()), actor=actor
        )
    job.refresh_from_db()
    assert job.mapping["smime_certificate"] == "key.smime"
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_map(job=job, mapping=job.mapping, actor=actor)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.PREVIEWED and job.error_count == 1
    assert job.errors[0]["row"] == 3 and "does not match" in job.errors[0]["message"]
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_confirm(job=job, actor=actor, skip_invalid=True)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    from contacts.selectors import contact_by_email

    imported = contact_by_email(email=good)
    assert imported is not None
    assert ContactEncryptionKey.objects.filter(contact=imported, kind="smime").count() == 1
    assert contact_by_email(email=bad) is None
    assert Contact.objects.count() >= 1
