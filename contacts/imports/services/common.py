"""The shared parts of the import steps: limits, the steps' errors, progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from contacts.imports import files
from contacts.models import ImportJob, ImportJobStatus
from contacts.services import ContactsError
from contacts.upsert import RowError
from luxmail import notifications

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

    def __init__(self, message: str, errors: Sequence[RowError] = (), count: int | None = None):
        super().__init__(message)
        self.message = message
        self.errors = list(errors)
        # All the errors found; ``errors`` may hold only the first of them.
        self.count = len(self.errors) if count is None else count


def may_import_phi(user: Any) -> bool:
    return bool(user is not None and user.has_perm("luxmail.view_phi"))


def progress_key(job_id: int) -> str:
    return f"contacts:import:{job_id}:progress"


def _progress(job_id: int, phase: str, done: int, total: int) -> None:
    # The job row is locked and its updates invisible until the import commits, so
    # live progress goes through the cache, which every web process shares.
    cache.set(progress_key(job_id), {"phase": phase, "done": done, "total": total}, PROGRESS_TTL)


def import_notify(*, job: ImportJob, failed: bool, error_count: int) -> None:
    """Tell staff (``import_errors`` notification) that an import failed or skipped rows.

    The title has counts only; the job page lists the rows' problems (never values).
    """
    what = (
        "failed" if failed else f"finished with {error_count:,} row error{'s' * (error_count != 1)}"
    )
    notifications.notify(
        kind="import_errors",
        title=f"Contact import #{job.pk} {what}.",
        link=reverse("contacts:import_job", args=[job.uuid]),
    )


def _fail(
    job: ImportJob, message: str, errors: Sequence[RowError] = (), count: int | None = None
) -> None:
    stored = sorted(errors, key=lambda e: e.row)
    count = len(stored) if count is None else count
    changed = (
        ImportJob.objects.filter(pk=job.pk)
        .exclude(status__in=FINISHED)
        .update(
            status=ImportJobStatus.FAILED,
            failure=message[:500],
            errors=[e.as_dict() for e in stored[:MAX_STORED_ERRORS]] if stored else job.errors,
            error_count=count if stored else job.error_count,
            finished_at=timezone.now(),
            file_path="",
        )
    )
    files.delete(job.file_path)
    cache.delete(progress_key(job.pk))
    # Only a confirmed import that then failed is news; a file refused while the person
    # is looking at the upload or preview page is shown to them there.
    if changed and job.status in (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING):
        import_notify(job=job, failed=True, error_count=count)
