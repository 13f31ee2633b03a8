"""The tasks contacts' services start, by name (see luxmail/jobs.py for why)."""

from luxmail.jobs import Job

IMPORT_INSPECT = Job("contacts.import_inspect")
IMPORT_PREVIEW = Job("contacts.import_preview")
IMPORT_RUN = Job("contacts.import_run")
BULK_RUN = Job("contacts.bulk_run")
