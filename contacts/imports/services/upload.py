"""Upload and mapping: store and inspect the file, then save the column mapping."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import HttpRequest

from contacts import jobs
from contacts.imports import columns, files
from contacts.imports.services.common import (
    ImportMappingError,
    ImportStateError,
    _fail,
    _progress,
    may_import_phi,
    progress_key,
)
from contacts.models import (
    ConsentSource,
    ContactList,
    ImportJob,
    ImportJobStatus,
)
from contacts.services import ContactsError
from luxmail import audit
from luxmail.actors import Actor, user_of

logger = logging.getLogger(__name__)


def import_job_create(
    *, uploaded: UploadedFile, actor: Actor, request: HttpRequest | None = None
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
                created_by=user_of(actor),
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
    counted = [0]

    def progress(done: int) -> None:
        counted[0] = done
        _progress(job.pk, "reading", done, 0)

    try:
        headers = files.scan(job.file_path, job.file_format, progress=progress)
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
            # Rows in the file, blank ones included: the check's progress bar ends there
            # (the check then counts the non-blank rows).
            status=ImportJobStatus.UPLOADED,
            headers=headers,
            mapping=mapping,
            total_rows=counted[0],
        )
    if updated:
        cache.delete(progress_key(job.pk))


def import_job_map(
    *,
    job: ImportJob,
    mapping: dict[str, str],
    actor: Actor,
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
