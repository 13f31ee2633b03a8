"""Finished contact imports in the retention purge (``luxmail/retention.py``).

An import's uploaded file is deleted when the import ends (or after a day when it is
abandoned: ``contacts.imports.services.cleanup``); its record (counts and row errors,
which hold row numbers and codes, never values) goes
``OrgSettings.import_retention_days`` after it finished. Imports belong to no campaign
or contact, so only an organization hold keeps them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from contacts.models import ImportJob, ImportJobStatus
from luxmail import retention

_ENDED = [ImportJobStatus.SUCCEEDED, ImportJobStatus.FAILED, ImportJobStatus.CANCELLED]


def _expired(cutoff: datetime) -> QuerySet[Any]:
    return ImportJob.objects.filter(status__in=_ENDED, created_at__lt=cutoff, file_path="")


def register() -> None:
    retention.register(
        retention.Purge(
            name="imports",
            label="Finished contact imports",
            days="import_retention_days",
            model=ImportJob,
            expired=_expired,
        )
    )
