"""The import streams its file in batches: every row and every error is counted, the
kept error messages are capped, and memory does not grow with the file."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse

from contacts.imports import services as imports
from contacts.imports.services import rows as import_rows
from contacts.models import Contact, ImportJob, ImportJobStatus
from luxmail import roles


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    settings.LUXMAIL_IMPORT_DIR = tmp_path / "imports"
    return settings.LUXMAIL_IMPORT_DIR


def _upload(actor, text: str) -> ImportJob:
    with TestCase.captureOnCommitCallbacks(execute=True):
        job = imports.import_job_create(
            uploaded=SimpleUploadedFile("patients.csv", text.encode()), actor=actor
        )
    job.refresh_from_db()
    return job


def test_seen_names_the_first_row_and_stays_compact():
    seen = import_rows._Seen(capacity=4)
    values = ["a@x.org", "b@x.org", "a@x.org", "c@x.org", "a@x.org", "b@x.org"]
    firsts = [seen.first(value, row) for row, value in enumerate(values, start=2)]
    assert firsts == [None, None, 2, None, 2, 3]
    for row in range(10, 5000):  # grows past its first size and keeps every value
        assert seen.first(f"p{row}@x.org", row) is None
    assert seen.first("p4321@x.org", 9999) == 4321 and seen.first("a@x.org", 1) == 2
    assert len(seen) == 3 + 4990
    assert seen.keys.itemsize == 8 and len(seen.keys) <= 4 * len(seen)  # arrays, not objects


@pytest.mark.django_db
def test_a_file_larger_than_the_batch_keeps_every_row_and_counts_every_error(
    make_user, settings, monkeypatch, staff_client, django_capture_on_commit_callbacks
):
    settings.LUXMAIL_IMPORT_BATCH = 40
    monkeypatch.setattr(import_rows, "MAX_STORED_ERRORS", 25)
    actor = make_user(roles.PHI_MARKETER)
    lines = ["email,first_name,birth_date,marketing_consent"]
    expected_errors = 0
    bad_rows = set()
    for index in range(500):
        row = index + 2  # spreadsheet row (the header is row 1)
        email, birth, consent = f"p{index}@example.org", "1970-01-01", "yes"
        if index % 10 == 3:
            birth = "not a date"
            expected_errors += 1
            bad_rows.add(row)
        if index % 50 == 7:  # a consent problem and a bad address on one row: both listed
            consent, email = "maybe", f"bad-{index}"
            expected_errors += 2
            bad_rows.add(row)
        if index % 100 == 99:  # repeats a row of an earlier batch
            email = f"p{index - 90}@example.org"
            expected_errors += 1
            bad_rows.add(row)
        lines.append(f"{email},P{index},{birth},{consent}")
    job = _upload(actor, "\n".join(lines) + "\n")
    assert job.total_rows == 500  # counted while the file was inspected
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_map(job=job, mapping=job.mapping, actor=actor)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.PREVIEWED, job.failure
    assert job.preview["rows"] == 500
    assert job.preview["error_rows"] == len(bad_rows)
    assert job.preview["valid"] == job.preview["create"] == 500 - len(bad_rows)
    assert job.preview["grants"] == {"marketing": 500 - len(bad_rows)}
    assert job.error_count == expected_errors
    # The lowest rows' messages are kept, in row order, a row's problems together.
    assert len(job.errors) == 25
    assert [e["row"] for e in job.errors] == sorted(e["row"] for e in job.errors)
    assert job.errors[0]["row"] == 5 and job.errors[1]["row"] == 9
    assert {e["field"] for e in job.errors if e["row"] == 9} == {"email", "consent.marketing"}
    duplicate = "Duplicate: the same email address is on row 11."
    assert {"row": 101, "field": "email", "message": duplicate} in job.errors
    page = staff_client(roles.PHI_MARKETER).get(reverse("contacts:import_job", args=[job.uuid]))
    page = page.content.decode()
    assert f"the first 25 are listed, {expected_errors - 25} more" in page

    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_confirm(job=job, actor=actor, skip_invalid=True)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    assert (job.total_rows, job.processed_rows) == (500, 500)
    assert job.created_count == 500 - len(bad_rows) == Contact.objects.count()
    assert job.skipped_count == len(bad_rows)
    assert job.error_count == expected_errors and len(job.errors) == 25
    assert job.details["consents_granted"] == 500 - len(bad_rows)


def _write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("email,external_id,marketing\n")
        for index in range(rows):
            consent = "yes" if index % 10 else "maybe"  # a row error every 10 rows
            handle.write(f"patient.{index}@example.org,ehr-{index},{consent}\n")


def test_reading_a_20k_row_file_keeps_memory_flat(settings, tmp_path):
    """No database: the streaming reader, the duplicate check and the error list.

    Holding the prepared rows of this file (the import before streaming) peaks at about
    22 MB under tracemalloc (55 MB at 50,000 rows); streaming it in batches of 500 peaks
    under 4 MB (6.4 MB at 50,000 rows: the two duplicate tables, 12 bytes a slot, and
    the first 2,000 error messages grow; the batch does not). 20,000 rows keep the test
    fast under tracemalloc.
    """
    settings.LUXMAIL_IMPORT_DIR = tmp_path
    settings.LUXMAIL_IMPORT_BATCH = 500
    rows = 20_000
    _write_csv(tmp_path / "big.csv", rows)
    headers = ["email", "external_id", "marketing"]
    job = ImportJob(
        file_path="big.csv",
        file_format="csv",
        headers=headers,
        mapping={**{h: h for h in headers}, "marketing": "consent.marketing"},
    )
    errors = import_rows._Errors()
    count = 0
    tracemalloc.start()
    try:
        for batch in import_rows._row_batches(job):
            count += len(batch.rows)
            errors.add(batch.rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    assert errors.count == errors.bad_rows == rows // 10
    assert peak < 6 * 1024 * 1024, f"{peak / 1024 / 1024:.1f} MB"


def test_row_preparer_routes_like_prepare_row():
    import datetime as dt

    from contacts.imports import columns

    headers = ["E-mail", "Notes", "DOB", "ZIP"]
    plain = {"E-mail": "email", "Notes": "", "DOB": "birth_date", "ZIP": "zip_code"}
    consent = {**plain, "Notes": "consent.marketing"}
    rows = [
        ("a@x.org", "yes", dt.datetime(1970, 1, 2), 2139),
        (" b@x.org ", None, "1970-01-02", 2139.0),
        (None, "", "", None),  # blank: skipped
        ("", "maybe", "", ""),  # only an ignored (or consent) cell
    ]
    for mapping in (plain, consent):
        prepare = columns.row_preparer(headers, mapping)
        for number, values in enumerate(rows, start=2):
            expected = columns.prepare_row(number, dict(zip(headers, values, strict=True)), mapping)
            assert prepare(number, values) == expected
