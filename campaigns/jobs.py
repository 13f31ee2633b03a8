"""The tasks campaigns' services start, by name (see luxmail/jobs.py for why)."""

from luxmail.jobs import Job

SEND_BATCH = Job("campaigns.tasks.send_batch")
PRESEND_LINKS = Job("campaigns.tasks.presend_links")
