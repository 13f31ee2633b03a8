"""The steps of a contact import: upload → map → dry-run preview → confirm → import.

Guarantees (docs/architecture.md "Import"):

* **Nothing until confirmed.** Upload and preview write only the :class:`ImportJob`;
  the preview runs ``contacts_bulk_upsert(dry_run=True)`` and lists every row error
  by spreadsheet row number (the header is row 1) with a readable reason, never a
  cell value.
* **All or nothing.** The import writes every batch inside one transaction together
  with the job's final status, so a failure at any row — a validation problem that
  appeared after the preview, a database error, a worker killed mid-run — leaves no
  contact, consent or list membership of the file behind.
* **Idempotent.** Rows equal to the stored contact are left untouched
  (``contacts_bulk_upsert``); consent is granted only where none is present and
  revoked only where one is, so importing the same file twice changes nothing.
* **Ids only.** Celery tasks get the job id; the file's location is on the job. The
  uploaded file is deleted once the import succeeded, failed or was cancelled, and by
  :func:`import_jobs_expire` when a job is abandoned.
* **Audited.** ``contacts.import_upload`` on upload; one ``phi.access`` (committed
  before the write starts, so it survives a rollback) and one ``contacts.import`` with
  the counts per run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts import jobs
from contacts import services as contact_services
from contacts.attributes import ContactValueError, normalize_email, normalize_external_id
from contacts.imports import columns, files
from contacts.imports.columns import PreparedRow
from contacts.models import (
    Consent,
    ConsentSource,
    Contact,
    ContactList,
    ImportJob,
    ImportJobStatus,
)
from contacts.segments import consent_present_q
from contacts.services import ContactsError
from contacts.upsert import RowError, email_bidx
from luxmail import audit, crypto

logger = logging.getLogger(__name__)

MAX_STORED_ERRORS = 2000
PROGRESS_TTL = 24 * 3600
FINISHED = (ImportJobStatus.SUCCEEDED, ImportJobStatus.FAILED, ImportJobStatus.CANCELLED)


class ImportMappingError(ContactsError):
    """The column mapping cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


class ImportStateError(ContactsError):
    """The job is not at the step the request assumes (e.g. confirmed twice)."""


class ImportAborted(Exception):
    """Raised inside the import transaction to roll every batch back."""

    def __init__(self, message: str, errors: Sequence[RowError] = ()):
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


def may_import_phi(user: Any) -> bool:
    return bool(user is not None and user.has_perm("luxmail.view_phi"))


def progress_key(job_id: int) -> str:
    return f"contacts:import:{job_id}:progress"


def _progress(job_id: int, phase: str, done: int, total: int) -> None:
    # The job row is locked and its updates invisible until the import commits, so
    # live progress goes through the cache, which every web process shares.
    cache.set(progress_key(job_id), {"phase": phase, "done": done, "total": total}, PROGRESS_TTL)


# --- upload and mapping -------------------------------------------------------------------


def import_job_create(
    *, uploaded: UploadedFile, actor: Any, request: HttpRequest | None = None
) -> ImportJob:
    """Store an uploaded CSV/XLSX file and queue its reading (Celery).

    Only cheap checks happen here (size, format, a workbook's zip directory:
    :func:`~contacts.imports.files.store_upload`); the file is parsed by
    :func:`import_job_inspect` in a worker, so a hostile file cannot hold the web
    process. Audits ``contacts.import_upload`` (job id, format, size). Raises
    :class:`~contacts.imports.files.ImportFileError` for a file refused by those checks
    (it is then not kept).
    """
    job_uuid = uuid.uuid4()
    filename, fmt, size = files.store_upload(uploaded=uploaded, name=str(job_uuid))
    try:
        with transaction.atomic():
            job = ImportJob.objects.create(
                uuid=job_uuid,
                status=ImportJobStatus.READING,
                original_name=Path(uploaded.name or "").name[:255],
                file_format=fmt,
                file_path=filename,
                options={"consent_source": ConsentSource.IMPORT, "evidence": ""},
                created_by=actor if getattr(actor, "pk", None) else None,
            )
            audit.record(
                "contacts.import_upload",
                actor=actor,
                request=request,
                target=job,
                details={"job": job.pk, "format": fmt, "bytes": size},
            )
            _progress(job.pk, "reading", 0, 0)
            transaction.on_commit(lambda: jobs.IMPORT_INSPECT.delay(job.pk))
    except BaseException:
        files.delete(filename)
        raise
    return job


def import_job_inspect(*, job_id: int) -> None:
    """Read a freshly uploaded file once and guess its column mapping from the headers.

    Every limit of :class:`~contacts.imports.files.Limits` is checked on the whole
    file here, so a file that cannot be imported fails right after the upload with a
    message naming the limit (the job becomes ``failed`` and the file is deleted).
    Idempotent: a job no longer ``reading`` is left alone.
    """
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status != ImportJobStatus.READING:
        return
    try:
        headers = files.scan(
            job.file_path,
            job.file_format,
            progress=lambda done: _progress(job.pk, "reading", done, 0),
        )
    except ContactsError as error:
        _fail(job, error.message)
        return
    except Exception as error:
        # Never the exception text: it could quote the file's content.
        logger.error("contact import %s: reading failed: %s", job.pk, type(error).__name__)
        _fail(job, f"The file could not be read ({type(error).__name__}); save it again.")
        return
    mapping = columns.guess_mapping(headers, columns.catalog())
    with transaction.atomic():
        updated = ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.READING).update(
            status=ImportJobStatus.UPLOADED, headers=headers, mapping=mapping
        )
    if updated:
        cache.delete(progress_key(job.pk))


def import_job_map(
    *,
    job: ImportJob,
    mapping: dict[str, str],
    actor: Any,
    consent_source: str = ConsentSource.IMPORT,
    evidence: str = "",
    contact_list: ContactList | None = None,
) -> ImportJob:
    """Save the column mapping and options, and start the dry-run preview (Celery).

    Raises :class:`ImportMappingError` listing every problem: no email column, two
    columns for one field, unknown fields, PHI columns for a user without
    ``luxmail.view_phi``; :class:`ImportStateError` once the import was confirmed.
    """
    problems: list[str] = []
    fields = {f.key: f for f in columns.catalog()}
    if set(mapping) != set(job.headers):
        problems.append("The mapping does not match the file's columns; upload it again.")
    used: dict[str, str] = {}
    for header in job.headers:
        key = mapping.get(header, columns.IGNORE)
        if not key:
            continue
        if key not in fields:
            problems.append(f"Column '{header[:60]}': unknown field.")
        elif key in used:
            problems.append(
                f"Columns '{used[key][:60]}' and '{header[:60]}' are both mapped to "
                f"{fields[key].label}; map one of them to Ignore."
            )
        else:
            used[key] = header
    if "email" not in used:
        problems.append("Map a column to Email: contacts are matched by their email address.")
    phi_columns = [header for key, header in used.items() if key in fields and fields[key].phi]
    if phi_columns and not may_import_phi(actor):
        names = ", ".join(f"'{h[:40]}'" for h in phi_columns)
        problems.append(
            f"Columns {names} hold PHI; importing them needs the PHI Marketer role. "
            "Map them to Ignore to import the other columns."
        )
    has_consent = any(k.startswith(columns.CONSENT_PREFIX) for k in used) and any(
        k not in (columns.CONSENT_SOURCE, columns.CONSENT_EVIDENCE)
        for k in used
        if k.startswith(columns.CONSENT_PREFIX)
    )
    for key in (columns.CONSENT_SOURCE, columns.CONSENT_EVIDENCE):
        if key in used and not has_consent:
            problems.append(
                f"Column '{used[key][:60]}' describes consent, but no column says which "
                "consent was given; map a consent column too or ignore it."
            )
    if consent_source not in ConsentSource.values:
        problems.append("Choose a consent source.")
    if len(evidence) > 200:
        problems.append("Evidence reference: at most 200 characters.")
    if problems:
        raise ImportMappingError(problems)
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in (ImportJobStatus.UPLOADED, ImportJobStatus.PREVIEWED):
            raise ImportStateError("This import can no longer be changed.")
        locked.mapping = {h: mapping.get(h, columns.IGNORE) for h in job.headers}
        locked.includes_phi = bool(phi_columns)
        locked.options = {
            **locked.options,
            "consent_source": consent_source,
            "evidence": " ".join(evidence.split()),
        }
        locked.contact_list = contact_list
        locked.status = ImportJobStatus.PREVIEWING
        locked.preview = {}
        locked.errors = []
        locked.error_count = 0
        locked.save()
        cache.delete(progress_key(locked.pk))
        transaction.on_commit(lambda: jobs.IMPORT_PREVIEW.delay(locked.pk))
    return locked


# --- reading and checking rows ------------------------------------------------------------


@dataclass
class _Rows:
    rows: list[PreparedRow]
    duplicates: set[int] = field(default_factory=set)

    @property
    def bad(self) -> list[PreparedRow]:
        return [r for r in self.rows if r.errors]


def _prepare(job: ImportJob) -> _Rows:
    _progress(job.pk, "reading", 0, 0)
    prepared: list[PreparedRow] = []
    with files.open_table(job.file_path, job.file_format) as table:
        headers = table.headers
        if [h.lower() for h in headers] != [h.lower() for h in job.headers]:
            raise files.ImportFileError("The file's columns changed since it was uploaded.")
        for number, row in table.rows:
            found = columns.prepare_row(number, dict(zip(headers, row, strict=True)), job.mapping)
            if found is not None:
                prepared.append(found)
    result = _Rows(prepared)
    _mark_duplicates(result)
    return result


def _mark_duplicates(rows: _Rows) -> None:
    """Flag the second and later rows with the same email or external id (file-wide).

    ``contacts_bulk_upsert`` catches duplicates inside one batch; a file is written in
    many batches, so the file-wide check happens here, with the same message.
    """
    emails: dict[bytes, int] = {}
    externals: dict[str, int] = {}
    for row in rows.rows:
        raw = row.data.get("email")
        if raw:
            try:
                address, _ = normalize_email(raw)
            except ContactValueError:
                address = ""
            if address:
                key = email_bidx(address)
                if key in emails:
                    row.errors.append(
                        RowError(
                            row.number,
                            "email",
                            f"Duplicate: the same email address is on row {emails[key]}.",
                        )
                    )
                    rows.duplicates.add(row.number)
                else:
                    emails[key] = row.number
        external = row.data.get("external_id")
        if external:
            try:
                value = normalize_external_id(external)
            except ContactValueError:
                value = ""
            if value and value in externals:
                row.errors.append(
                    RowError(
                        row.number,
                        "external_id",
                        f"Duplicate: the same external id is on row {externals[value]}.",
                    )
                )
                rows.duplicates.add(row.number)
            elif value:
                externals[value] = row.number


def _batches(rows: Sequence[PreparedRow]) -> Iterator[list[PreparedRow]]:
    size = max(1, min(settings.LUXMAIL_IMPORT_BATCH, contact_services.MAX_BATCH))
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])


def _attach(batch: Sequence[PreparedRow], errors: Sequence[RowError]) -> None:
    """Give each row the errors ``contacts_bulk_upsert`` reported by batch index."""
    for error in errors:
        row = batch[error.row]
        row.errors.append(RowError(row.number, error.field, error.message))


def _dry_run(batch: Sequence[PreparedRow], actor: Any) -> contact_services.BulkUpsertResult:
    return contact_services.contacts_bulk_upsert(
        rows=[r.data for r in batch], actor=actor, dry_run=True, first_row_number=0
    )


def _error_dicts(rows: Sequence[PreparedRow]) -> tuple[list[dict[str, Any]], int]:
    found = [e for r in rows for e in r.errors]
    found.sort(key=lambda e: e.row)
    return [e.as_dict() for e in found[:MAX_STORED_ERRORS]], len(found)


# --- preview ------------------------------------------------------------------------------


def import_job_preview(*, job_id: int) -> None:
    """Dry-run the import: every row error and what would be created or updated.

    Writes only the job (status ``previewed`` with counts and errors). Idempotent: a
    job no longer in ``previewing`` is left alone. A file that cannot be read fails
    the job and is deleted.
    """
    job = ImportJob.objects.filter(pk=job_id).select_related("created_by").first()
    if job is None or job.status != ImportJobStatus.PREVIEWING:
        return
    actor = job.created_by
    try:
        rows = _prepare(job)
    except ContactsError as error:
        _fail(job, error.message)
        return
    total = len(rows.rows)
    would_create = would_update = 0
    checked = 0
    for batch in _batches(rows.rows):
        candidates = [r for r in batch if r.number not in rows.duplicates]
        result = _dry_run(candidates, actor)
        _attach(candidates, result.errors)
        clean = [r for r in candidates if not r.errors]
        if len(clean) != len(candidates):
            result = _dry_run(clean, actor)
            _attach(clean, result.errors)
        would_create += result.created
        would_update += result.updated
        checked += len(batch)
        _progress(job.pk, "checking", checked, total)
    clean_rows = [r for r in rows.rows if not r.errors]
    grants: dict[str, int] = defaultdict(int)
    revokes: dict[str, int] = defaultdict(int)
    for row in clean_rows:
        for purpose in row.consent.grants:
            grants[purpose] += 1
        for purpose in row.consent.revokes:
            revokes[purpose] += 1
    errors, error_count = _error_dicts(rows.rows)
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportJobStatus.PREVIEWING:
            return
        locked.total_rows = total
        locked.errors = errors
        locked.error_count = error_count
        locked.preview = {
            "rows": total,
            "valid": len(clean_rows),
            "error_rows": total - len(clean_rows),
            "create": would_create,
            "update": would_update,
            "grants": dict(grants),
            "revokes": dict(revokes),
        }
        locked.status = ImportJobStatus.PREVIEWED
        locked.save()


# --- confirm and run ------------------------------------------------------------------------


def import_job_confirm(
    *, job: ImportJob, actor: Any, skip_invalid: bool = False, request: HttpRequest | None = None
) -> ImportJob:
    """Queue the import of a previewed job (Celery, job id only).

    With row errors in the preview the user must choose ``skip_invalid`` (import the
    other rows) or fix the file. Raises :class:`ImportStateError` or
    :class:`ImportMappingError` (PHI columns without the permission).
    """
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportJobStatus.PREVIEWED:
            raise ImportStateError("Only a checked import can be started.")
        if locked.includes_phi and not may_import_phi(actor):
            raise ImportMappingError(["Importing PHI columns needs the PHI Marketer role."])
        if locked.preview.get("valid", 0) == 0:
            raise ImportStateError("No row of this file can be imported; fix the file first.")
        if locked.error_count and not skip_invalid:
            raise ImportStateError(
                "Some rows have errors: fix the file and upload it again, or choose to "
                "import only the rows without errors."
            )
        locked.options = {**locked.options, "skip_invalid": bool(skip_invalid)}
        locked.status = ImportJobStatus.QUEUED
        locked.save()
        _progress(locked.pk, "queued", 0, locked.total_rows)
        transaction.on_commit(lambda: jobs.IMPORT_RUN.delay(locked.pk))
    return locked


def _claim(job_id: int) -> ImportJob | None:
    """Mark a queued job running (a redelivered task may find it running already)."""
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update(of=("self",))
            .select_related("created_by", "contact_list")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.status not in (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING):
            return None
        job.status = ImportJobStatus.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.save(update_fields=["status", "started_at"])
    return job


@dataclass
class _Outcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    granted: int = 0
    revoked: int = 0
    listed: int = 0
    contact_ids: list[int] = field(default_factory=list)


def import_job_run(*, job_id: int) -> None:
    """Import a confirmed job: every batch in one transaction, then delete the file.

    Idempotent per job: a finished job is left alone, and a duplicate delivery waits
    for the row lock of the running one and then finds it finished. On failure the
    job says why (row errors or the kind of failure, never a value) and nothing of
    the file is in the database.
    """
    job = _claim(job_id)
    if job is None:
        return
    actor = job.created_by
    started = time.monotonic()
    try:
        if actor is None or not actor.is_active:
            raise ImportAborted("The person who started this import can no longer import.")
        if job.includes_phi and not may_import_phi(actor):
            raise ImportAborted("Importing PHI columns needs the PHI Marketer role.")
        rows = _prepare(job)
        # Committed on its own, before the write: the decryption of existing contacts
        # for merging stays on record even if the import rolls back.
        access = crypto.phi_access(
            actor=actor,
            purpose="contacts.import",
            details={"import": job.pk, "rows": len(rows.rows)},
        )
        with transaction.atomic():
            locked = ImportJob.objects.select_for_update().get(pk=job.pk)
            if locked.status != ImportJobStatus.RUNNING:
                return
            outcome = _write(job, rows, actor, access)
            errors, error_count = _error_dicts(rows.bad)
            audit.record(
                "contacts.import",
                actor=actor,
                target=locked,
                phi=locked.includes_phi,
                details={
                    "job": locked.pk,
                    "rows": len(rows.rows),
                    "created": outcome.created,
                    "updated": outcome.updated,
                    "unchanged": outcome.unchanged,
                    "skipped": outcome.skipped,
                    "consents_granted": outcome.granted,
                    "consents_revoked": outcome.revoked,
                    "list": locked.contact_list_id,
                    "phi": locked.includes_phi,
                },
            )
            locked.status = ImportJobStatus.SUCCEEDED
            locked.total_rows = len(rows.rows)
            locked.processed_rows = len(rows.rows)
            locked.created_count = outcome.created
            locked.updated_count = outcome.updated
            locked.unchanged_count = outcome.unchanged
            locked.skipped_count = outcome.skipped
            locked.errors = errors
            locked.error_count = error_count
            locked.details = {
                "consents_granted": outcome.granted,
                "consents_revoked": outcome.revoked,
                "list_added": outcome.listed,
                "seconds": round(time.monotonic() - started, 1),
            }
            locked.finished_at = timezone.now()
            locked.save()
    except ImportAborted as aborted:
        _fail(job, aborted.message, aborted.errors)
    except ContactsError as error:
        _fail(job, f"{error.message} Nothing was imported.")
    except Exception as error:
        # The exception text may quote database values; only its type is kept.
        logger.error("contact import %s failed: %s", job.pk, type(error).__name__)
        _fail(
            job,
            f"The import stopped with an unexpected error ({type(error).__name__}). "
            "Nothing was imported; try again or ask an administrator.",
        )
    finally:
        files.delete(job.file_path)
        ImportJob.objects.filter(pk=job.pk).update(file_path="")
        cache.delete(progress_key(job.pk))


def _write(job: ImportJob, rows: _Rows, actor: Any, access: crypto.Access) -> _Outcome:
    skip_invalid = bool(job.options.get("skip_invalid"))
    bad = rows.bad
    if bad and not skip_invalid:
        problem = bad[0].errors[0]
        raise ImportAborted(
            f"Row {problem.row} has an error ({problem.message}); nothing was imported.",
            [e for r in bad for e in r.errors],
        )
    outcome = _Outcome(skipped=len(bad))
    good = [r for r in rows.rows if not r.errors]
    consent_of: dict[int, columns.ConsentPlan] = {}
    done = 0
    for batch in _batches(good):
        if skip_invalid:
            # The database may have changed since the preview (an external id taken
            # meanwhile): such rows are skipped too, and reported.
            check = _dry_run(batch, actor)
            if check.errors:
                _attach(batch, check.errors)
                outcome.skipped += sum(1 for r in batch if r.errors)
                batch = [r for r in batch if not r.errors]
        if batch:
            result = contact_services.contacts_bulk_upsert(
                rows=[r.data for r in batch],
                actor=actor,
                source="import",
                first_row_number=0,
                access=access,
                record_event=False,
            )
            if result.errors:
                _attach(batch, result.errors)
                first = next(r for r in batch if r.errors)
                raise ImportAborted(
                    f"Row {first.number} could not be imported ({first.errors[-1].message}); "
                    "nothing was imported.",
                    [e for r in batch for e in r.errors],
                )
            outcome.created += result.created
            outcome.updated += result.updated
            outcome.unchanged += result.unchanged
            for row, contact_id in zip(batch, result.contact_ids, strict=True):
                outcome.contact_ids.append(contact_id)
                if row.consent:
                    consent_of[contact_id] = row.consent
                if row.keys:
                    _store_keys(contact_id, row.keys, actor)
        done += len(batch)
        _progress(job.pk, "writing", done, len(good))
    _progress(job.pk, "consents", len(good), len(good))
    outcome.granted, outcome.revoked = _apply_consents(job, consent_of, actor)
    if job.contact_list is not None and outcome.contact_ids:
        outcome.listed = contact_services.list_members_add(
            contact_list=job.contact_list, contact_ids=outcome.contact_ids, actor=actor
        )
    return outcome


def _store_keys(contact_id: int, keys: Sequence[Any], actor: Any) -> None:
    """The row's encryption keys (validated against its address while preparing)."""
    from contacts.keys.services import contact_key_store_validated

    contact = Contact.objects.get(pk=contact_id)
    for validated in keys:
        contact_key_store_validated(
            contact=contact, validated=validated, actor=actor, source="import"
        )


def _chunks(ids: Sequence[int], size: int = 2000) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _apply_consents(
    job: ImportJob, plans: dict[int, columns.ConsentPlan], actor: Any
) -> tuple[int, int]:
    """Grant where no consent is present, revoke where one is; returns the counts."""
    if not plans:
        return 0, 0
    now = timezone.now()
    default_source = job.options.get("consent_source") or ConsentSource.IMPORT
    default_evidence = job.options.get("evidence") or ""
    grants: dict[str, list[int]] = defaultdict(list)
    revokes: dict[str, list[int]] = defaultdict(list)
    for contact_id, plan in plans.items():
        for purpose in plan.grants:
            grants[purpose].append(contact_id)
        for purpose in plan.revokes:
            revokes[purpose].append(contact_id)
    granted = revoked = 0
    for purpose, ids in grants.items():
        present: set[int] = set()
        for chunk in _chunks(ids):
            present.update(
                Contact.objects.filter(pk__in=chunk)
                .filter(consent_present_q(purpose, now))
                .values_list("pk", flat=True)
            )
        groups: dict[tuple[str, str, dt.datetime | None], list[int]] = defaultdict(list)
        for contact_id in ids:
            if contact_id in present:
                continue
            plan = plans[contact_id]
            key = (
                plan.source or default_source,
                plan.evidence or default_evidence,
                plan.grants[purpose],
            )
            groups[key].append(contact_id)
        for (source, evidence, granted_at), members in groups.items():
            for chunk in _chunks(members, 5000):
                granted += len(
                    contact_services.consent_grant_many(
                        contact_ids=chunk,
                        purpose=purpose,
                        source=source,
                        evidence_ref=evidence,
                        granted_at=granted_at,
                        actor=actor,
                    )
                )
    for purpose, ids in revokes.items():
        for chunk in _chunks(ids, 5000):
            holding = list(
                Consent.objects.filter(contact_id__in=chunk, purpose=purpose, revoked_at=None)
                .values_list("contact_id", flat=True)
                .distinct()
            )
            if holding:
                revoked += contact_services.consent_revoke_many(
                    contact_ids=holding, purpose=purpose, actor=actor, source="import"
                )
    return granted, revoked


def _fail(job: ImportJob, message: str, errors: Sequence[RowError] = ()) -> None:
    stored = sorted(errors, key=lambda e: e.row)
    ImportJob.objects.filter(pk=job.pk).exclude(status__in=FINISHED).update(
        status=ImportJobStatus.FAILED,
        failure=message[:500],
        errors=[e.as_dict() for e in stored[:MAX_STORED_ERRORS]] if stored else job.errors,
        error_count=len(stored) if stored else job.error_count,
        finished_at=timezone.now(),
        file_path="",
    )
    files.delete(job.file_path)
    cache.delete(progress_key(job.pk))


# --- cancel and clean-up ------------------------------------------------------------------


def import_job_cancel(*, job: ImportJob, actor: Any, request: HttpRequest | None = None) -> None:
    """Abandon an import that has not started writing; deletes its file. Audited.

    Raises :class:`ImportStateError` for a running or finished import.
    """
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status in (ImportJobStatus.RUNNING, *FINISHED):
            raise ImportStateError("This import is running or finished; it cannot be cancelled.")
        path = locked.file_path
        locked.status = ImportJobStatus.CANCELLED
        locked.file_path = ""
        locked.finished_at = timezone.now()
        locked.save()
        audit.record(
            "contacts.import_cancel",
            actor=actor,
            request=request,
            target=locked,
            details={"job": locked.pk},
        )
    files.delete(path)
    cache.delete(progress_key(job.pk))


def import_jobs_expire(*, max_age: dt.timedelta = dt.timedelta(hours=24)) -> int:
    """Delete the files of abandoned imports and stray files older than ``max_age``.

    Jobs left at upload or preview become ``cancelled``; jobs stuck running or queued
    (a worker that died and never came back) become ``failed`` — their transaction
    never committed, so nothing of them is in the database. Returns the jobs expired.
    """
    cutoff = timezone.now() - max_age
    expired = 0
    stale = ImportJob.objects.filter(created_at__lt=cutoff).exclude(status__in=FINISHED)
    for job in stale:
        running = job.status in (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING)
        if running:
            changed = (
                ImportJob.objects.filter(pk=job.pk)
                .exclude(status__in=FINISHED)
                .update(
                    status=ImportJobStatus.FAILED,
                    failure="The import did not finish within a day; nothing was imported.",
                    finished_at=timezone.now(),
                    file_path="",
                )
            )
        else:
            changed = (
                ImportJob.objects.filter(pk=job.pk)
                .exclude(status__in=FINISHED)
                .update(status=ImportJobStatus.CANCELLED, finished_at=timezone.now(), file_path="")
            )
        files.delete(job.file_path)
        expired += changed
    keep = set(
        ImportJob.objects.exclude(status__in=FINISHED)
        .exclude(file_path="")
        .values_list("file_path", flat=True)
    )
    for path in files.import_dir().iterdir():
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
        if path.is_file() and path.name not in keep and modified < cutoff:
            path.unlink(missing_ok=True)
    return expired
