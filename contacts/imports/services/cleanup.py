"""Cancel an import and delete the files of abandoned ones."""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts.imports import files
from contacts.imports.services.common import FINISHED, ImportStateError, progress_key
from contacts.models import (
    ImportJob,
    ImportJobStatus,
)
from luxmail import audit
from luxmail.actors import Actor


def import_job_cancel(*, job: ImportJob, actor: Actor, request: HttpRequest | None = None) -> None:
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
