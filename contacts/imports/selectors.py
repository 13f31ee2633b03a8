"""Reads of contact imports: recent jobs, one job's live progress, its error list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet

from contacts.imports import columns
from contacts.imports.services import progress_key
from contacts.models import ImportJob, ImportJobStatus

ACTIVE = (
    ImportJobStatus.READING,
    ImportJobStatus.PREVIEWING,
    ImportJobStatus.QUEUED,
    ImportJobStatus.RUNNING,
)


def import_jobs_recent(*, limit: int = 20) -> QuerySet[ImportJob]:
    return ImportJob.objects.select_related("created_by", "contact_list").order_by(
        "-created_at", "-id"
    )[:limit]


@dataclass(frozen=True)
class Progress:
    phase: str
    done: int
    total: int

    @property
    def percent(self) -> int | None:
        if self.total <= 0:
            return None
        return min(100, round(100 * self.done / self.total))


_PHASES = {
    "queued": "Waiting for a worker",
    "reading": "Reading the file",
    "checking": "Checking rows",
    "writing": "Writing contacts",
    "consents": "Recording consent",
}


def import_job_progress(*, job: ImportJob) -> Progress | None:
    """Live progress of a job being checked or imported (None when not active)."""
    if job.status not in ACTIVE:
        return None
    found: Any = cache.get(progress_key(job.pk))
    if not isinstance(found, dict):
        return Progress(phase=_PHASES["queued"], done=0, total=job.total_rows)
    return Progress(
        phase=_PHASES.get(str(found.get("phase")), "Working"),
        done=int(found.get("done") or 0),
        total=int(found.get("total") or 0),
    )


def import_job_errors(*, job: ImportJob) -> list[dict[str, Any]]:
    """The stored row errors with the column name each field came from."""
    header_of = {key: header for header, key in job.mapping.items() if key}
    labels = {f.key: f.label for f in columns.catalog()}
    shown: list[dict[str, Any]] = []
    for error in job.errors:
        key = str(error.get("field", ""))
        shown.append(
            {
                "row": error.get("row"),
                "column": header_of.get(key, ""),
                "field": labels.get(key, key),
                "message": error.get("message", ""),
            }
        )
    return shown
