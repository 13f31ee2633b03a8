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
    key = b"k" * 16

    def first(value: str, row: int) -> int | None:
        return seen.first_digest(import_rows._signed_digest(value, key), row)

    values = ["a@x.org", "b@x.org", "a@x.org", "c@x.org", "a@x.org", "b@x.org"]
    firsts = [first(value, row) for row, value in enumerate(values, start=2)]
    assert firsts == [None, None, 2, None, 2, 3]
    for row in range(10, 5000):  # grows past its first size and keeps every value
        assert first(f"p{row}@x.org", row) is None
    assert first("p4321@x.org", 9999) == 4321 and first("a@x.org", 1) == 2
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


@pytest.mark.django_db
def test_reading_a_20k_row_file_keeps_memory_flat(settings, tmp_path):
    """The streaming reader, the duplicate check and the error list.

    Holding the prepared rows of this file (the import before streaming) peaks at about
    22 MB under tracemalloc (55 MB at 50,000 rows); streaming it in batches of 500 peaks
    under 4 MB: the duplicate check keeps its digests in a temporary table in the
    database (before, two in-process tables of 12 bytes a slot grew with the file), and
    only the first 2,000 error messages are kept. 20,000 rows keep the test fast under
    tracemalloc.
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


def _key_rows(count: int) -> list[tuple[str, str]]:
    """(email, external id) pairs that repeat earlier rows in every way a file can:
    inside a batch, across a batch boundary (last row of one, first of the next), far
    back, by email only, by external id only, both, and after normalization."""
    rows = [(f"p{i}@example.org", f"ehr-{i}") for i in range(count)]
    for index, source in ((9, 3), (10, 9), (19, 10), (20, 0), (47, 5), (64, 63), (77, 30)):
        email, external = rows[source]
        rows[index] = (
            (email.upper(), f"ehr-x{index}")
            if index % 2
            else (f"q{index}@example.org", f"  {external} ")
        )
    rows[85] = rows[2]  # both keys repeat
    rows[86] = rows[85]  # the repeat of a repeat names the first row
    rows[90] = ("not an address", "")  # invalid: no duplicate check, its own error
    return rows


def _naive_duplicates(rows: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    from contacts.attributes import normalize_email, normalize_external_id

    first: dict[tuple[str, str], int] = {}
    found = []
    for number, (email, external) in enumerate(rows, start=2):
        for column, label, raw, normalize in (
            ("email", "email address", email, lambda v: normalize_email(v)[0]),
            ("external_id", "external id", external, normalize_external_id),
        ):
            try:
                value = normalize(raw) if raw else None
            except Exception:
                value = None
            if not value:
                continue
            if (column, value) in first:
                found.append(
                    (
                        number,
                        column,
                        f"Duplicate: the same {label} is on row {first[column, value]}.",
                    )
                )
            else:
                first[column, value] = number
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("store", ["table", "memory"])
@pytest.mark.parametrize("size", [1, 10, 11, 1000])
def test_duplicates_across_batches_match_a_naive_file_wide_check(settings, tmp_path, store, size):
    """The database-backed check (and the in-process one used without PostgreSQL) report
    exactly the errors of a one-pass dictionary over the whole file, whatever the batch
    size: a batch of 1, batches whose boundary falls between a row and its repeat, and one
    batch for the whole file."""
    settings.LUXMAIL_IMPORT_DIR = tmp_path
    rows = _key_rows(100)
    with (tmp_path / "keys.csv").open("w", encoding="utf-8", newline="") as handle:
        handle.write("email,external_id\n")
        for email, external in rows:
            handle.write(f"{email},{external}\n")
    job = ImportJob(
        file_path="keys.csv",
        file_format="csv",
        headers=["email", "external_id"],
        mapping={"email": "email", "external_id": "external_id"},
    )
    if store == "memory":
        original = import_rows._Duplicates.__init__

        def in_memory(self):
            original(self)
            self.store = import_rows._SeenMemory()

        settings_patch = pytest.MonkeyPatch()
        settings_patch.setattr(import_rows._Duplicates, "__init__", in_memory)
    try:
        found = []
        repeated = set()
        for batch in import_rows._row_batches(job, size=size):
            repeated |= batch.duplicates
            for row in batch.rows:
                found += [
                    (e.row, e.field, e.message) for e in row.errors if e.message.startswith("Dup")
                ]
    finally:
        if store == "memory":
            settings_patch.undo()
    expected = _naive_duplicates(rows)
    assert found == expected
    assert repeated == {row for row, _, _ in expected}
    assert (11, "email", "Duplicate: the same email address is on row 5.") in found
    assert (88, "external_id", "Duplicate: the same external id is on row 4.") in found


@pytest.mark.django_db(transaction=True)
def test_the_check_drops_its_duplicate_table(tmp_path, settings):
    """The check runs in autocommit: the temporary table goes when the file is done (or
    abandoned), not at the end of a long-lived worker's session."""
    from django.db import connection

    def temp_tables() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'import_seen_%%' "
                "AND relkind = 'r' AND relpersistence = 't' AND pg_table_is_visible(oid)"
            )
            return int(cursor.fetchone()[0])

    settings.LUXMAIL_IMPORT_DIR = tmp_path
    (tmp_path / "k.csv").write_text("email\na@example.org\nA@example.org\n", encoding="utf-8")
    job = ImportJob(
        file_path="k.csv", file_format="csv", headers=["email"], mapping={"email": "email"}
    )
    batches = import_rows._row_batches(job, size=1)
    assert next(batches).duplicates == set()
    assert temp_tables() == 1
    assert next(batches).duplicates == {3}
    batches.close()  # abandoned mid-file
    assert temp_tables() == 0
    assert [b.duplicates for b in import_rows._row_batches(job)] == [{3}]
    assert temp_tables() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [False, True])
def test_the_import_repeats_the_duplicate_check_only_for_a_file_with_errors(
    make_user, settings, monkeypatch, django_capture_on_commit_callbacks, bad
):
    """A file the check found clean is not checked for duplicates again (each row is
    checked once); a file with errors is, so the import lists the same errors."""
    settings.LUXMAIL_IMPORT_BATCH = 3
    actor = make_user(roles.PHI_MARKETER)
    lines = ["email,external_id"] + [f"p{i}@example.org,e{i}" for i in range(8)]
    if bad:
        lines.append("P1@example.org,e99")  # repeats row 3, in a later batch
    job = _upload(actor, "\n".join(lines) + "\n")
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_map(job=job, mapping=job.mapping, actor=actor)
    job.refresh_from_db()
    preview_errors = job.errors
    assert job.error_count == (1 if bad else 0)
    marked: list[int] = []
    original = import_rows._Duplicates.mark

    def counting(self, rows):
        marked.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(import_rows._Duplicates, "mark", counting)
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_confirm(job=job, actor=actor, skip_invalid=bad)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    assert Contact.objects.count() == 8
    assert sum(marked) == (9 if bad else 0)
    assert job.errors == preview_errors


def test_cached_normalization_gives_the_same_answers_and_fresh_errors():
    """Emails and name tokens computed once per distinct value give what the per-value
    code gives (sealing: test_crypto's sealed_row test); a refused address raises a new
    error each time (a cached one is never re-raised with another row's traceback), with
    the same clear message."""
    from contacts import attributes
    from contacts.attributes import ContactValueError

    for raw in (" Ann@Example.ORG ", "bad-address", "x@exa mple.org", "a@b"):
        results, errors = [], []
        for _ in range(3):
            try:
                results.append(attributes.normalize_email(raw))
            except ContactValueError as error:
                errors.append(error)  # kept alive: distinct objects have distinct ids
        if errors:
            assert not results and len(errors) == 3 and len({id(e) for e in errors}) == 3
            assert len({(e.field, e.message) for e in errors}) == 1
            assert errors[0].message.startswith("Email: ") and raw not in errors[0].message
        else:
            assert results == [("ann@example.org", "example.org")] * 3
    assert attributes.identity_tokens(
        first_name="Mary-Jane", last_name="O'Neil", phone="+16175550100"
    ) == attributes.identity_tokens(
        first_name="mary-jane", last_name="O'Neil", phone="+16175550100"
    )


@pytest.mark.django_db
def test_the_duplicate_table_holds_keyed_digests_only(tmp_path, settings):
    """What the database sees of the file's addresses is a digest under a key drawn for
    this file: neither the address nor a digest anyone could recompute from a guess."""
    import hashlib

    from django.db import connection

    settings.LUXMAIL_IMPORT_DIR = tmp_path
    (tmp_path / "k.csv").write_text("email\nann@example.org\nbob@example.org\n", "utf-8")
    job = ImportJob(
        file_path="k.csv", file_format="csv", headers=["email"], mapping={"email": "email"}
    )
    batches = import_rows._row_batches(job)
    next(batches)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'import_seen_%%' AND relkind = 'r'"
        )
        (table,) = cursor.fetchone()
        cursor.execute(f'SELECT digest FROM "{table}" ORDER BY row')  # noqa: S608
        stored = [digest for (digest,) in cursor.fetchall()]
    batches.close()
    unkeyed = [
        int.from_bytes(hashlib.blake2b(a.encode(), digest_size=8).digest(), "big", signed=True)
        for a in ("ann@example.org", "bob@example.org")
    ]
    assert len(stored) == 2 and not set(stored) & set(unkeyed)
    again = import_rows._Duplicates()
    assert again.key != import_rows._Duplicates().key  # a new key per file


@pytest.mark.django_db
def test_the_check_and_the_import_run_with_the_startup_heap_frozen(
    make_user, monkeypatch, django_capture_on_commit_callbacks
):
    """Full collections walk only what the job made (``luxmail.collector``), and the
    collector is as it was once the job is done."""
    import gc

    from contacts import services as contact_services

    actor = make_user(roles.PHI_MARKETER)
    job = _upload(actor, "email,first_name\na@example.org,Ann\nb@example.org,Bob\n")
    frozen: list[tuple[bool, int]] = []
    original = contact_services.contacts_bulk_upsert

    def recording(**kwargs):
        frozen.append((kwargs.get("dry_run", False), gc.get_freeze_count()))
        return original(**kwargs)

    monkeypatch.setattr(contact_services, "contacts_bulk_upsert", recording)
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_map(job=job, mapping=job.mapping, actor=actor)
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_confirm(job=job, actor=actor)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    assert {dry for dry, _ in frozen} == {True, False}  # both steps were seen
    assert all(count > 0 for _, count in frozen)
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize(
    "raw",
    [
        "ann@example.org",
        "a.b+tag@sub.example.co.uk",
        '"quoted name"@example.org',
        "x@[127.0.0.1]",
        "x@[300.1.1.1]",
        "x@[IPv6:::1]",
        "x@localhost",
        "x@-bad.org",
        "x@exa_mple.org",
        "x@example.",
        "x@.example.org",
        "x..y@example.org",
        ".x@example.org",
        "x@" + "a" * 64 + ".org",
        "y" * 310 + "@example.org",
        "z@exämple.org",
        "q@example.org.",
        "q@123.org",
    ],
)
def test_email_checks_with_cached_domains_accept_what_the_validator_accepts(raw):
    """normalize_email checks the domain once per domain; it accepts exactly the
    addresses Django's EmailValidator accepts."""
    from django.core.exceptions import ValidationError
    from django.core.validators import EmailValidator

    from contacts import attributes
    from contacts.attributes import ContactValueError

    text = raw.strip().lower()
    local, _, domain = text.rpartition("@")
    try:
        address = f"{local}@{attributes._ascii_domain(domain)}"
        EmailValidator()(address)
        expected = True
    except (ValidationError, ContactValueError):
        expected = False
    for _ in range(2):  # the second time from the cache
        try:
            attributes.normalize_email(raw)
            accepted = True
        except ContactValueError:
            accepted = False
        assert accepted == expected, raw


@pytest.mark.django_db
def test_a_failing_import_leaves_the_collector_as_it_was(
    make_user, monkeypatch, django_capture_on_commit_callbacks
):
    import gc

    from contacts import services as contact_services

    actor = make_user(roles.PHI_MARKETER)
    job = _upload(actor, "email,first_name\na@example.org,Ann\n")
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_map(job=job, mapping=job.mapping, actor=actor)
    threshold = gc.get_threshold()

    def failing(**kwargs):
        assert gc.get_freeze_count() > 0
        raise RuntimeError("the database went away")

    monkeypatch.setattr(contact_services, "contacts_bulk_upsert", failing)
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_confirm(job=job, actor=actor)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.FAILED and "RuntimeError" in job.failure
    assert Contact.objects.count() == 0
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == threshold
