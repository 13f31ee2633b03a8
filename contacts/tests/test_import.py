"""Contact import: preview without writes, all-or-nothing runs, idempotent re-import,
consent columns, PHI permission, file deletion, and a real Celery worker."""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import TestCase

from contacts import selectors, services
from contacts.imports import columns
from contacts.imports import services as imports
from contacts.imports.files import ImportFileError
from contacts.models import (
    Consent,
    ConsentPurpose,
    Contact,
    ContactProfile,
    ContactTokenSet,
    ImportJob,
    ImportJobStatus,
    ListMembership,
)
from luxmail import roles
from luxmail.models import AuditEvent
from luxmail.testing import require

ROOT = Path(__file__).resolve().parents[2]

GOOD_CSV = (
    "E-mail,First Name,Last Name,DOB,ZIP,Diagnoses,Marketing consent,PHI marketing consent\n"
    "ada@example.org,Ada,Lovelace,1960-03-01,02139,E11.9;I10,yes,2024-05-01\n"
    "bob@example.com,Bob,Stone,04/12/1975,2139,e785,no,\n"
    "cy@example.net,Cy,,,10001-1234,,yes,\n"
)


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    settings.LUXMAIL_IMPORT_DIR = tmp_path / "imports"
    return settings.LUXMAIL_IMPORT_DIR


@pytest.fixture
def phi_marketer(make_user):
    return make_user(roles.PHI_MARKETER)


@pytest.fixture
def marketer(make_user):
    return make_user(roles.MARKETER)


def upload(actor, text: str | bytes, name: str = "patients.csv") -> ImportJob:
    """Upload and let the reading task run (eagerly, on commit), as the page would."""
    raw = text.encode() if isinstance(text, str) else text
    with TestCase.captureOnCommitCallbacks(execute=True):
        job = imports.import_job_create(uploaded=SimpleUploadedFile(name, raw), actor=actor)
    job.refresh_from_db()
    return job


def preview(job, actor, capture, **options) -> ImportJob:
    with capture(execute=True):
        imports.import_job_map(
            job=job, mapping=options.pop("mapping", job.mapping), actor=actor, **options
        )
    job.refresh_from_db()
    assert job.status == ImportJobStatus.PREVIEWED, job.failure
    return job


def confirm(job, actor, capture, **options) -> ImportJob:
    with capture(execute=True):
        imports.import_job_confirm(job=job, actor=actor, **options)
    job.refresh_from_db()
    return job


def import_text(actor, text, capture, **options) -> ImportJob:
    job = preview(upload(actor, text), actor, capture)
    return confirm(job, actor, capture, **options)


def stored_file(job) -> Path:
    return Path(django_settings.LUXMAIL_IMPORT_DIR) / job.file_path


# --- upload and mapping ---------------------------------------------------------------------


@pytest.mark.django_db
def test_upload_stores_the_file_privately_and_guesses_the_mapping(phi_marketer):
    job = upload(phi_marketer, GOOD_CSV)
    path = stored_file(job)
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600
    assert job.original_name == "patients.csv"
    assert job.mapping == {
        "E-mail": "email",
        "First Name": "first_name",
        "Last Name": "last_name",
        "DOB": "birth_date",
        "ZIP": "zip_code",
        "Diagnoses": "conditions",
        "Marketing consent": "consent.marketing",
        "PHI marketing consent": "consent.phi_marketing",
    }
    event = AuditEvent.objects.get(action="contacts.import_upload")
    assert event.details["bytes"] == len(GOOD_CSV.encode())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("list.txt", b"email\nx@example.org\n", "Upload a .csv or .xlsx"),
        ("list.csv", b"", "empty"),
        ("list.xlsx", b"email\nx@example.org\n", "not an Excel workbook"),
    ],
)
def test_unusable_files_are_refused_and_not_kept(phi_marketer, import_dir, name, content, message):
    with pytest.raises(ImportFileError, match=message):
        upload(phi_marketer, content, name)
    assert not ImportJob.objects.exists()
    assert not any(import_dir.iterdir()) if import_dir.exists() else True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"email,Email\nx@example.org,y@example.org\n", "appears twice"),
        (b"email,,name\n", "Column 2 has no name"),
    ],
)
def test_files_that_cannot_be_read_fail_the_job_and_are_deleted(
    phi_marketer, import_dir, content, message
):
    job = upload(phi_marketer, content, "list.csv")
    assert job.status == ImportJobStatus.FAILED and message in job.failure
    assert job.file_path == "" and not any(import_dir.iterdir())


@pytest.mark.django_db
def test_mapping_problems_are_all_listed(phi_marketer):
    job = upload(phi_marketer, "Mail,Name,Other name,Source\nx@example.org,a,b,web_form\n")
    mapping = {
        "Mail": "",
        "Name": "first_name",
        "Other name": "first_name",
        "Source": "consent.source",
    }
    with pytest.raises(imports.ImportMappingError) as caught:
        imports.import_job_map(job=job, mapping=mapping, actor=phi_marketer)
    text = " ".join(caught.value.problems)
    assert "Map a column to Email" in text
    assert "'Name' and 'Other name' are both mapped to First name" in text
    assert "no column says which consent was given" in text


@pytest.mark.django_db
def test_marketer_without_phi_cannot_import_phi_columns(
    marketer, django_capture_on_commit_callbacks
):
    job = upload(marketer, GOOD_CSV)
    with pytest.raises(imports.ImportMappingError) as caught:
        imports.import_job_map(job=job, mapping=job.mapping, actor=marketer)
    assert "'DOB', 'ZIP', 'Diagnoses' hold PHI" in caught.value.message
    assert "PHI Marketer role" in caught.value.message
    # Ignoring the PHI columns imports the rest.
    mapping = {**job.mapping, "DOB": "", "ZIP": "", "Diagnoses": ""}
    job = preview(job, marketer, django_capture_on_commit_callbacks, mapping=mapping)
    assert not job.includes_phi
    job = confirm(job, marketer, django_capture_on_commit_callbacks)
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    assert job.created_count == 3
    contact = selectors.contact_by_email(email="ada@example.org")
    assert contact is not None and contact.profile.birth_date is None


# --- preview --------------------------------------------------------------------------------


BAD_CSV = (
    "email,first_name,birth_date,conditions,marketing_consent,zip_code\n"
    "good@example.org,Good,1970-01-01,E11.9,yes,02139\n"  # row 2
    "not-an-email,Bad,1970-01-01,,,\n"  # row 3
    "date@example.org,Date,31/31/1970,,,\n"  # row 4
    "\n"  # row 5: blank, skipped but counted in the numbering
    "code@example.org,Code,,diabetes type 2,,\n"  # row 6
    "GOOD@example.org,Dup,,,,\n"  # row 7: duplicate of row 2 (case-insensitive)
    "consent@example.org,Consent,,,maybe,\n"  # row 8
    "many@example.org,Many,2999-01-01,XYZ,,1\n"  # row 9: three problems
    ",NoEmail,,,,\n"  # row 10
)


@pytest.mark.django_db
def test_preview_lists_every_bad_row_with_a_reason_and_writes_nothing(
    phi_marketer, django_capture_on_commit_callbacks
):
    before = AuditEvent.objects.count()
    job = preview(upload(phi_marketer, BAD_CSV), phi_marketer, django_capture_on_commit_callbacks)
    errors = [(e["row"], e["field"], e["message"]) for e in job.errors]
    assert (3, "email", "Email: not a valid address (missing @).") in errors
    assert (4, "birth_date", "Date of birth: not a date (use YYYY-MM-DD or MM/DD/YYYY).") in errors
    assert any(
        row == 6 and field == "conditions" and "not an ICD-10 code" in msg
        for row, field, msg in errors
    )
    assert (7, "email", "Duplicate: the same email address is on row 2.") in errors
    assert any(
        row == 8 and "Marketing consent: use yes, no or the date" in msg for row, _, msg in errors
    )
    row9 = {field for row, field, _ in errors if row == 9}
    assert row9 == {"birth_date", "conditions", "zip_code"}
    assert (10, "email", "Email: an address is required.") in errors
    assert 2 not in {row for row, _, _ in errors}
    assert job.preview["rows"] == 8
    assert job.preview["valid"] == 1
    assert job.preview["create"] == 1
    assert job.preview["grants"] == {"marketing": 1}
    # Nothing but the job was written: no contact, no consent, no upsert/import event.
    assert Contact.objects.count() == 0
    assert Consent.objects.count() == 0
    actions = set(AuditEvent.objects.filter(pk__gt=0).values_list("action", flat=True)[before:])
    assert not actions & {"contacts.import", "contact.bulk_upsert", "phi.access"}
    # No error message repeats a cell value.
    for value in ("not-an-email", "31/31/1970", "diabetes", "maybe", "XYZ", "2999"):
        assert value not in str(job.errors)
    # Errors block the import until the user chooses to skip those rows.
    with pytest.raises(imports.ImportStateError, match="Some rows have errors"):
        imports.import_job_confirm(job=job, actor=phi_marketer)
    assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_skipping_bad_rows_imports_only_the_good_ones(
    phi_marketer, django_capture_on_commit_callbacks
):
    job = preview(upload(phi_marketer, BAD_CSV), phi_marketer, django_capture_on_commit_callbacks)
    job = confirm(job, phi_marketer, django_capture_on_commit_callbacks, skip_invalid=True)
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    assert (job.created_count, job.skipped_count) == (1, 7)
    assert Contact.objects.count() == 1
    assert {e["row"] for e in job.errors} == {3, 4, 6, 7, 8, 9, 10}


# --- import -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_creates_contacts_consents_and_list_and_deletes_the_file(
    phi_marketer, django_capture_on_commit_callbacks
):
    contact_list = services.contact_list_create(name="Spring drive", actor=phi_marketer)
    job = upload(phi_marketer, GOOD_CSV)
    path = stored_file(job)
    job = preview(
        job,
        phi_marketer,
        django_capture_on_commit_callbacks,
        consent_source="paper",
        evidence="Intake forms batch 7",
        contact_list=contact_list,
    )
    assert job.preview["create"] == 3
    assert job.preview["grants"] == {"marketing": 2, "phi_marketing": 1}
    assert job.preview["revokes"] == {"marketing": 1}
    job = confirm(job, phi_marketer, django_capture_on_commit_callbacks)
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    assert (job.created_count, job.updated_count, job.unchanged_count) == (3, 0, 0)
    assert not path.exists() and job.file_path == ""

    ada = selectors.contact_by_email(email="ADA@example.org")
    values = selectors.contact_phi(contact=ada, actor=phi_marketer)
    assert values["first_name"] == "Ada"
    assert values["birth_date"] == dt.date(1960, 3, 1)
    assert values["zip_code"] == "02139"
    assert values["conditions"] == ["E11.9", "I10"]
    bob = selectors.contact_by_email(email="bob@example.com")
    assert selectors.contact_phi(contact=bob, actor=phi_marketer)["zip_code"] == "02139"

    consents = Consent.objects.filter(contact=ada).order_by("purpose")
    assert [(c.purpose, c.source, c.evidence_ref) for c in consents] == [
        ("marketing", "paper", "Intake forms batch 7"),
        ("phi_marketing", "paper", "Intake forms batch 7"),
    ]
    assert consents[1].granted_at.date() == dt.date(2024, 5, 1)
    assert not Consent.objects.filter(contact=bob).exists()  # "no" with nothing to revoke
    assert ListMembership.objects.filter(contact_list=contact_list).count() == 3

    event = AuditEvent.objects.get(action="contacts.import")
    assert event.phi is True
    assert event.details["created"] == 3 and event.details["consents_granted"] == 3
    assert event.details["list"] == contact_list.pk
    # One PHI access for the run (purpose contacts.import), none per batch.
    assert (
        AuditEvent.objects.filter(action="phi.access", details__purpose="contacts.import").count()
        == 1
    )
    assert not AuditEvent.objects.filter(action="contact.bulk_upsert").exists()


@pytest.mark.django_db
def test_reimporting_the_same_file_changes_nothing(
    phi_marketer, django_capture_on_commit_callbacks
):
    first = import_text(phi_marketer, GOOD_CSV, django_capture_on_commit_callbacks)
    assert first.created_count == 3

    def snapshot():
        contacts = {
            c.pk: (bytes(c.email), bytes(c.first_name or b""), c.updated_at)
            for c in Contact.objects.all()
        }
        profiles = {
            p.pk: (bytes(p.birth_date or b""), bytes(p.conditions or b""))
            for p in ContactProfile.objects.all()
        }
        tokens = sorted(
            (c, list(t)) for c, t in ContactTokenSet.objects.values_list("contact_id", "tokens")
        )
        consents = sorted(Consent.objects.values_list("pk", "revoked_at"))
        return contacts, profiles, tokens, consents

    before = snapshot()
    second = import_text(phi_marketer, GOOD_CSV, django_capture_on_commit_callbacks)
    assert second.status == ImportJobStatus.SUCCEEDED, second.failure
    assert (second.created_count, second.updated_count, second.unchanged_count) == (0, 0, 3)
    assert second.details["consents_granted"] == 0 and second.details["consents_revoked"] == 0
    assert snapshot() == before


@pytest.mark.django_db
def test_reimport_with_changes_updates_and_revokes(
    phi_marketer, django_capture_on_commit_callbacks
):
    import_text(phi_marketer, GOOD_CSV, django_capture_on_commit_callbacks)
    changed = GOOD_CSV.replace("02139,E11.9;I10,yes", "02140,E11.9;I10,no")
    job = import_text(phi_marketer, changed, django_capture_on_commit_callbacks)
    assert (job.created_count, job.updated_count, job.unchanged_count) == (0, 1, 2)
    assert job.details["consents_revoked"] == 1
    ada = selectors.contact_by_email(email="ada@example.org")
    assert not selectors.consent_present(contact=ada, purpose=ConsentPurpose.MARKETING)
    assert selectors.consent_present(contact=ada, purpose=ConsentPurpose.PHI_MARKETING)
    assert selectors.contact_phi(contact=ada, actor=phi_marketer)["zip_code"] == "02140"


@pytest.mark.django_db
def test_xlsx_cells_keep_dates_zip_codes_and_phone_numbers(
    phi_marketer, django_capture_on_commit_callbacks
):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Email", "Phone", "Date of birth", "Zip code", "Last visit", "Journey"])
    sheet.append(
        [
            "xl@example.org",
            6175550100,
            dt.datetime(1980, 7, 4),
            2139,
            dt.date(2025, 1, 15),
            "At risk",
        ]
    )
    sheet.append([None, None, None, None, None, None])  # row 3, blank
    sheet.append(["xl2@example.org", "+1 (617) 555-0101", "1990-02-03", "02140-1234", None, "new"])
    raw = io.BytesIO()
    book.save(raw)
    job = import_text_bytes = upload(phi_marketer, raw.getvalue(), "clinic.xlsx")
    assert job.file_format == "xlsx"
    job = preview(import_text_bytes, phi_marketer, django_capture_on_commit_callbacks)
    assert job.errors == [] and job.preview["rows"] == 2
    job = confirm(job, phi_marketer, django_capture_on_commit_callbacks)
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    one = selectors.contact_phi(
        contact=selectors.contact_by_email(email="xl@example.org"), actor=phi_marketer
    )
    assert one["phone"] == "6175550100"
    assert one["birth_date"] == dt.date(1980, 7, 4)
    assert one["zip_code"] == "02139"
    assert one["last_visit"] == dt.date(2025, 1, 15)
    assert one["journey_stage"] == "at_risk"
    two = selectors.contact_phi(
        contact=selectors.contact_by_email(email="xl2@example.org"), actor=phi_marketer
    )
    assert two["phone"] == "+16175550101" and two["zip_code"] == "02140-1234"


@pytest.mark.django_db
def test_rows_are_numbered_as_in_the_spreadsheet_across_batches(
    phi_marketer, settings, django_capture_on_commit_callbacks
):
    settings.LUXMAIL_IMPORT_BATCH = 3
    lines = ["email,birth_date"] + [f"p{i}@example.org,1970-01-01" for i in range(10)]
    lines[8] = "p7@example.org,not a date"  # spreadsheet row 9
    lines.append("p1@example.org,1970-01-01")  # row 12, duplicate of row 3 in another batch
    job = preview(
        upload(phi_marketer, "\n".join(lines) + "\n"),
        phi_marketer,
        django_capture_on_commit_callbacks,
    )
    assert [(e["row"], e["field"]) for e in job.errors] == [(9, "birth_date"), (12, "email")]
    assert "row 3" in job.errors[1]["message"]


# --- failures -------------------------------------------------------------------------------


@pytest.fixture
def postgres(db):
    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")


@pytest.mark.postgres
def test_database_failure_mid_import_leaves_no_partial_batch(
    postgres, phi_marketer, settings, django_capture_on_commit_callbacks
):
    """Batches 1 and 2 are written, batch 3 hits a database constraint: all roll back."""
    settings.LUXMAIL_IMPORT_BATCH = 2
    rows = [f"p{i}@example.org,E11.9,yes" for i in range(4)]
    rows += ["p4@refused.example,E11.9,yes", "p5@example.org,E11.9,yes"]
    job = preview(
        upload(phi_marketer, "email,conditions,marketing_consent\n" + "\n".join(rows) + "\n"),
        phi_marketer,
        django_capture_on_commit_callbacks,
    )
    assert job.error_count == 0 and job.preview["create"] == 6
    # A rule the database enforces but the application does not know about (a DBA's
    # constraint, a full disk …): the third batch's INSERT fails inside PostgreSQL.
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE contacts_contact ADD CONSTRAINT test_refused_domain "
            "CHECK (domain <> 'refused.example')"
        )
    path = stored_file(job)
    job = confirm(job, phi_marketer, django_capture_on_commit_callbacks)
    assert job.status == ImportJobStatus.FAILED
    assert "IntegrityError" in job.failure and "Nothing was imported" in job.failure
    assert Contact.objects.count() == 0
    assert ContactTokenSet.objects.count() == 0
    assert Consent.objects.count() == 0
    assert not AuditEvent.objects.filter(action="contacts.import").exists()
    # The PHI access of the run is on record although its transaction rolled back.
    assert AuditEvent.objects.filter(
        action="phi.access", details__purpose="contacts.import"
    ).exists()
    assert not path.exists() and job.file_path == ""


@pytest.mark.django_db
def test_conflict_that_appears_after_the_preview_aborts_the_whole_import(
    phi_marketer, settings, django_capture_on_commit_callbacks
):
    settings.LUXMAIL_IMPORT_BATCH = 2
    text = "email,external_id\n" + "".join(f"p{i}@example.org,crm-{i}\n" for i in range(6))
    job = preview(upload(phi_marketer, text), phi_marketer, django_capture_on_commit_callbacks)
    assert job.error_count == 0
    # Meanwhile somebody gives crm-5 (row 7, the last batch) to another contact.
    services.contact_create(
        data={"email": "other@example.org", "external_id": "crm-5"}, actor=phi_marketer
    )
    job = confirm(job, phi_marketer, django_capture_on_commit_callbacks)
    assert job.status == ImportJobStatus.FAILED
    assert job.failure.startswith("Row 7 could not be imported")
    assert job.errors == [
        {
            "row": 7,
            "field": "external_id",
            "message": "External id: already belongs to another contact.",
        }
    ]
    assert Contact.objects.count() == 1  # only the other contact


@pytest.mark.django_db
def test_cancel_deletes_the_file_and_stops_a_queued_import(
    phi_marketer, django_capture_on_commit_callbacks
):
    job = preview(upload(phi_marketer, GOOD_CSV), phi_marketer, django_capture_on_commit_callbacks)
    path = stored_file(job)
    imports.import_job_confirm(job=job, actor=phi_marketer)  # queued; task not run (no commit)
    imports.import_job_cancel(job=job, actor=phi_marketer)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.CANCELLED and not path.exists()
    imports.import_job_run(job_id=job.pk)  # a late delivery of the task does nothing
    assert Contact.objects.count() == 0
    with pytest.raises(imports.ImportStateError):
        imports.import_job_cancel(job=job, actor=phi_marketer)


@pytest.mark.django_db
def test_abandoned_uploads_and_stray_files_expire(phi_marketer, import_dir):
    job = upload(phi_marketer, GOOD_CSV)
    stray = import_dir / "left-over.csv"
    stray.write_text("email\n")
    assert imports.import_jobs_expire(max_age=dt.timedelta(hours=1)) == 0
    assert stored_file(job).exists() and stray.exists()
    past = time.time() - 7200
    os.utime(stray, (past, past))
    ImportJob.objects.filter(pk=job.pk).update(created_at=job.created_at - dt.timedelta(hours=2))
    path = stored_file(job)
    assert imports.import_jobs_expire(max_age=dt.timedelta(hours=1)) == 1
    job.refresh_from_db()
    assert job.status == ImportJobStatus.CANCELLED
    assert not path.exists() and not stray.exists()


def test_consent_column_values():
    row = columns.prepare_row(
        5,
        {
            "e": "a@example.org",
            "m": "Yes",
            "p": "2020-01-02",
            "t": "opted out",
            "s": "Signed paper form",
        },
        {
            "e": "email",
            "m": "consent.marketing",
            "p": "consent.phi_marketing",
            "t": "consent.transactional",
            "s": "consent.source",
        },
    )
    assert row is not None and row.errors == []
    assert row.consent.grants["marketing"] is None
    assert row.consent.grants["phi_marketing"].date() == dt.date(2020, 1, 2)
    assert row.consent.revokes == {"transactional"}
    assert row.consent.source == "paper"
    assert (
        columns.prepare_row(6, {"e": "", "m": None}, {"e": "email", "m": "consent.marketing"})
        is None
    )


# --- a real Celery worker -------------------------------------------------------------------


def _worker(import_dir: Path) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "LUXMAIL_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "luxmail.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "LUXMAIL_CELERY_EAGER": "0",
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "LUXMAIL_REDIS_URL": django_settings.REDIS_URL or "",
        "LUXMAIL_IMPORT_DIR": str(import_dir),
        "LUXMAIL_IMPORT_BATCH": str(django_settings.LUXMAIL_IMPORT_BATCH),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "luxmail",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            "celery",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait(predicate, seconds=180.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def real_worker(transactional_db, import_dir):
    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")
    require(
        str(django_settings.CELERY_BROKER_URL).startswith("redis://"),
        "needs Redis for a real Celery worker",
    )
    from luxmail.celery import app

    app.conf.task_always_eager = False
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    import_dir.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen] = []

    def start():
        process = _worker(import_dir)
        started.append(process)
        return process

    try:
        yield start
    finally:
        app.conf.task_always_eager = True
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


def _rows(count: int) -> str:
    return "email,first_name,birth_date,conditions,zip_code,marketing_consent\n" + "".join(
        f"patient{i}@example.org,P{i},19{50 + i % 40}-0{1 + i % 9}-1{i % 9},"
        f"E11.{i % 10},0{2100 + i % 90},yes\n"
        for i in range(count)
    )


def _read(job):
    """Wait for the worker's reading task (the upload itself parses nothing)."""
    return _wait(
        lambda: ImportJob.objects.filter(pk=job.pk).exclude(status=ImportJobStatus.READING).first(),
        what="the reading task",
    )


def _finished(job_id):
    job = ImportJob.objects.get(pk=job_id)
    return (
        job if job.status in imports.FINISHED or job.status == ImportJobStatus.PREVIEWED else None
    )


@pytest.mark.celery
@pytest.mark.redis
@pytest.mark.postgres
def test_a_real_worker_previews_and_imports_with_progress(real_worker, phi_marketer, settings):
    settings.LUXMAIL_IMPORT_BATCH = 500
    real_worker()
    job = upload(phi_marketer, _rows(3000))
    job = _read(job)
    path = stored_file(job)
    imports.import_job_map(job=job, mapping=job.mapping, actor=phi_marketer)
    job = _wait(lambda: _finished(job.pk), what="the preview")
    assert job.status == ImportJobStatus.PREVIEWED, job.failure
    assert job.preview["create"] == 3000 and job.error_count == 0
    imports.import_job_confirm(job=job, actor=phi_marketer)
    seen = _wait(
        lambda: (
            (cache.get(imports.progress_key(job.pk)) or {}).get("phase") == "writing"
            and cache.get(imports.progress_key(job.pk))
        ),
        what="progress",
    )
    assert 0 < seen["total"] == 3000
    job = _wait(
        lambda: (
            ImportJob.objects.get(pk=job.pk)
            if ImportJob.objects.get(pk=job.pk).status in imports.FINISHED
            else None
        ),
        what="the import",
    )
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    assert job.created_count == 3000
    assert Contact.objects.count() == 3000
    assert Consent.objects.filter(purpose="marketing").count() == 3000
    assert not path.exists()


@pytest.mark.celery
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_worker_killed_mid_import_leaves_nothing(real_worker, phi_marketer, settings):
    settings.LUXMAIL_IMPORT_BATCH = 250
    worker = real_worker()
    job = upload(phi_marketer, _rows(20000))
    job = _read(job)
    imports.import_job_map(job=job, mapping=job.mapping, actor=phi_marketer)
    job = _wait(lambda: _finished(job.pk), what="the preview")
    imports.import_job_confirm(job=job, actor=phi_marketer)
    _wait(
        lambda: (
            (cache.get(imports.progress_key(job.pk)) or {}).get("done", 0) >= 1000
            and (cache.get(imports.progress_key(job.pk)) or {}).get("phase") == "writing"
        ),
        what="a few batches written",
    )
    os.killpg(worker.pid, signal.SIGKILL)  # the worker dies holding an open transaction
    worker.wait(timeout=20)
    assert Contact.objects.count() == 0
    assert ContactTokenSet.objects.count() == 0
    job.refresh_from_db()
    assert job.status == ImportJobStatus.RUNNING
    # The hourly sweep fails the stuck job and deletes its file.
    path = stored_file(job)
    assert path.exists()
    imports.import_jobs_expire(max_age=dt.timedelta(0))
    job.refresh_from_db()
    assert job.status == ImportJobStatus.FAILED and not path.exists()


@pytest.mark.celery
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_a_real_worker_imports_many_rows(real_worker, phi_marketer, settings):
    """Six full batches through the worker; the same at 100,000 rows, timed, is
    bench/import_worker.py (too slow for the suite)."""
    rows = 12_000
    settings.LUXMAIL_IMPORT_BATCH = 2000
    real_worker()
    job = upload(phi_marketer, _rows(rows))
    job = _read(job)
    path = stored_file(job)
    imports.import_job_map(job=job, mapping=job.mapping, actor=phi_marketer)
    job = _wait(lambda: _finished(job.pk), seconds=400, what="the preview")
    assert job.status == ImportJobStatus.PREVIEWED, job.failure
    assert job.preview["create"] == rows and job.error_count == 0
    imports.import_job_confirm(job=job, actor=phi_marketer)
    job = _wait(
        lambda: ImportJob.objects.filter(pk=job.pk, status__in=imports.FINISHED).first(),
        seconds=500,
        what="the import",
    )
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    assert job.created_count == rows == Contact.objects.count()
    assert job.details["consents_granted"] == rows
    assert not path.exists()
