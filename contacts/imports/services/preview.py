"""The dry-run preview of a mapped import (nothing is written but the job)."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from contacts.imports.services.common import _fail, _progress
from contacts.imports.services.rows import _attach, _batches, _dry_run, _error_dicts, _prepare
from contacts.models import (
    ImportJob,
    ImportJobStatus,
)
from contacts.services import ContactsError


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
