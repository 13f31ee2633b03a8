"""The steps of a contact import: upload → map → dry-run preview → confirm → import.

Guarantees (docs/architecture.md "Import"):

* **Nothing until confirmed.** Upload and preview write only the :class:`ImportJob`;
  the preview runs ``contacts_bulk_upsert(dry_run=True)`` and lists every row error
  by spreadsheet row number (the header is row 1) with a readable reason, never a
  cell value.
* **All or nothing.** The import writes every batch inside one transaction together
  with the job's final status, so a failure at any row — a validation problem that
  appeared after the preview, a database error, a worker killed mid-run — leaves no
  contact, consent or list membership of the file behind.
* **Idempotent.** Rows equal to the stored contact are left untouched
  (``contacts_bulk_upsert``); consent is granted only where none is present and
  revoked only where one is, so importing the same file twice changes nothing.
* **Ids only.** Celery tasks get the job id; the file's location is on the job. The
  uploaded file is deleted once the import succeeded, failed or was cancelled, and by
  :func:`import_jobs_expire` when a job is abandoned.
* **Audited.** ``contacts.import_upload`` on upload; one ``phi.access`` (committed
  before the write starts, so it survives a rollback) and one ``contacts.import`` with
  the counts per run.

One module per step (``upload``, ``preview``, ``run``, ``cleanup``) with the shared
parts (``common``, ``rows``); re-exported here by name, as callers use
``contacts.imports.services.<name>``.
"""

from contacts.imports.services.cleanup import (
    import_job_cancel,
    import_jobs_expire,
)
from contacts.imports.services.common import (
    FINISHED,
    MAX_STORED_ERRORS,
    PROGRESS_TTL,
    ImportAborted,
    ImportMappingError,
    ImportStateError,
    may_import_phi,
    progress_key,
)
from contacts.imports.services.preview import (
    import_job_preview,
)
from contacts.imports.services.run import (
    import_job_confirm,
    import_job_run,
)
from contacts.imports.services.upload import (
    import_job_create,
    import_job_inspect,
    import_job_map,
)

__all__ = [
    "FINISHED",
    "MAX_STORED_ERRORS",
    "PROGRESS_TTL",
    "ImportAborted",
    "ImportMappingError",
    "ImportStateError",
    "import_job_cancel",
    "import_job_confirm",
    "import_job_create",
    "import_job_inspect",
    "import_job_map",
    "import_job_preview",
    "import_job_run",
    "import_jobs_expire",
    "may_import_phi",
    "progress_key",
]
