"""The file of a bulk "export" job (issue 20): written on download, never stored.

The job (``contacts/services/bulk.py``) only freezes which contacts are in the export
(ids, no PHI). The CSV is produced when its creator downloads it, through
``contacts/exporting.py`` — the same columns, PHI rules, crypto access and audit as the
export page — so no file with PHI ever rests on disk. The download works only for the
user who started the job, only while the job is younger than :data:`EXPORT_TTL`, and
shows PHI columns only if that user asked for them and may export PHI *at download time*.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from contacts import exporting
from contacts.models import BulkAction, BulkJob, BulkJobStatus
from contacts.services.errors import ContactsError

EXPORT_TTL = dt.timedelta(hours=24)


class BulkExportError(ContactsError):
    pass


def bulk_export_ready(*, job: BulkJob, user: Any) -> dt.datetime | None:
    """When ``user``'s download of ``job`` expires, or ``None`` if there is none to offer."""
    if (
        job.action != BulkAction.EXPORT
        or job.status != BulkJobStatus.SUCCEEDED
        or job.finished_at is None
        or user is None
        or job.created_by_id != user.pk
    ):
        return None
    expires = job.finished_at + EXPORT_TTL
    return expires if expires > timezone.now() else None


def bulk_export_prepare(
    *, job: BulkJob, user: Any, request: HttpRequest | None = None
) -> exporting.Export:
    """The audited CSV export of a finished export job, for the user who started it.

    Raises :class:`BulkExportError` when the job is not a finished export of ``user``'s
    or its download has expired. Audits ``phi.access`` and ``contacts.export``.
    """
    if bulk_export_ready(job=job, user=user) is None:
        raise BulkExportError("This export is not available: it expired or is not yours.")
    ids = tuple(int(pk) for pk in job.params.get("ids", []))
    return exporting.contacts_export(
        scope=exporting.ExportScope(contact_ids=ids),
        fmt="csv",
        actor=user,
        want_phi=bool(job.params.get("phi")),
        request=request,
    )
