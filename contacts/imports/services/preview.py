"""The dry-run preview of a mapped import (nothing is written but the job)."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from contacts.imports.services.common import _fail, _progress
from contacts.imports.services.rows import _attach, _dry_run, _Errors, _row_batches
from contacts.models import (
    ImportJob,
    ImportJobStatus,
)
from contacts.services import ContactsError
from luxmail import collector


def import_job_preview(*, job_id: int) -> None:
    """Dry-run the import: every row error and what would be created or updated.

    Streams the file in batches (bounded memory, :mod:`.rows`). Writes only the job
    (status ``previewed`` with counts and the first errors, plus the count of all).
    Idempotent: a job no longer in ``previewing`` is left alone. A file that cannot be
    read fails the job and is deleted.
    """
    job = ImportJob.objects.filter(pk=job_id).select_related("created_by").first()
    if job is None or job.status != ImportJobStatus.PREVIEWING:
        return
    actor = job.created_by
    total = would_create = would_update = 0
    errors = _Errors()
    grants: dict[str, int] = defaultdict(int)
    revokes: dict[str, int] = defaultdict(int)
    # The inspection counted the file's rows (blank ones included): the bar's end.
    lines = job.total_rows
    _progress(job.pk, "checking", 0, lines)
    try:
        with collector.heap_frozen():
            for batch in _row_batches(job):
                candidates = [r for r in batch.rows if r.number not in batch.duplicates]
                result = _dry_run(candidates, actor)
                _attach(candidates, result.errors)
                clean = [r for r in candidates if not r.errors]
                if len(clean) != len(candidates):
                    result = _dry_run(clean, actor)
                    _attach(clean, result.errors)
                would_create += result.created
                would_update += result.updated
                for row in batch.rows:
                    if row.errors:
                        continue
                    for purpose in row.consent.grants:
                        grants[purpose] += 1
                    for purpose in row.consent.revokes:
                        revokes[purpose] += 1
                errors.add(batch.rows)
                total += len(batch.rows)
                _progress(job.pk, "checking", batch.read, max(lines, batch.read))
    except ContactsError as error:
        _fail(job, error.message)
        return
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportJobStatus.PREVIEWING:
            return
        locked.total_rows = total
        locked.errors = errors.dicts()
        locked.error_count = errors.count
        locked.preview = {
            "rows": total,
            "valid": total - errors.bad_rows,
            "error_rows": errors.bad_rows,
            "create": would_create,
            "update": would_update,
            "grants": dict(grants),
            "revokes": dict(revokes),
        }
        locked.status = ImportJobStatus.PREVIEWED
        locked.save()
