"""The dry-run preview of a mapped import (nothing is written but the job)."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from contacts.imports.services.common import _fail, _progress
from contacts.imports.services.rows import _attach, _dry_run, _good_batches, _scan
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
        scan = _scan(job)
        would_create = would_update = checked = 0
        grants: dict[str, int] = defaultdict(int)
        revokes: dict[str, int] = defaultdict(int)
        for batch in _good_batches(job, scan):
            result = _dry_run(batch, actor)
            _attach(batch, result.errors)
            clean = [r for r in batch if not r.errors]
            if len(clean) != len(batch):
                for row in batch:
                    scan.mark(row.number, row.errors)
                result = _dry_run(clean, actor)
                _attach(clean, result.errors)
                for row in clean:
                    scan.mark(row.number, row.errors)
                clean = [r for r in clean if not r.errors]
            would_create += result.created
            would_update += result.updated
            for row in clean:
                for purpose in row.consent.grants:
                    grants[purpose] += 1
                for purpose in row.consent.revokes:
                    revokes[purpose] += 1
            checked += len(batch)
            _progress(job.pk, "checking", checked, scan.valid)
    except ContactsError as error:
        _fail(job, error.message)
        return
    total = scan.total
    valid = total - scan.bad_rows
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportJobStatus.PREVIEWING:
            return
        locked.total_rows = total
        locked.errors = scan.error_dicts()
        locked.error_count = scan.error_count
        locked.preview = {
            "rows": total,
            "valid": valid,
            "error_rows": total - valid,
            "create": would_create,
            "update": would_update,
            "grants": dict(grants),
            "revokes": dict(revokes),
        }
        locked.status = ImportJobStatus.PREVIEWED
        locked.save()
