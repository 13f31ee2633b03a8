"""Celery shells of the contacts app: job ids in, never PHI (docs/architecture.md rule 1)."""

from __future__ import annotations

from celery import shared_task

from contacts import jobs
from contacts.imports import services as imports
from contacts.services import bulk


@shared_task(name=jobs.IMPORT_INSPECT.name, ignore_result=True)
def import_inspect(job_id: int) -> None:
    """Read an uploaded file once (every limit checked) and guess its column mapping."""
    imports.import_job_inspect(job_id=job_id)


@shared_task(name=jobs.IMPORT_PREVIEW.name, ignore_result=True)
def import_preview(job_id: int) -> None:
    """Dry-run an uploaded import (row errors, would-create/update counts)."""
    imports.import_job_preview(job_id=job_id)


@shared_task(name=jobs.IMPORT_RUN.name, ignore_result=True)
def import_run(job_id: int) -> None:
    """Import a confirmed job in one transaction; the file is deleted afterwards."""
    imports.import_job_run(job_id=job_id)


@shared_task(name="contacts.import_expire", ignore_result=True)
def import_expire() -> None:
    """Delete the files of abandoned imports (beat, hourly)."""
    imports.import_jobs_expire()


@shared_task(name=jobs.BULK_RUN.name, ignore_result=True)
def bulk_run(job_id: int) -> None:
    """Work through a bulk job's next batches (re-queues itself until done)."""
    bulk.bulk_job_run(job_id=job_id)
