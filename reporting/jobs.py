"""The tasks reporting's services start, by name (see luxmail/jobs.py for why)."""

from luxmail.jobs import Job

DELIVER_WEBHOOK = Job("reporting.deliver_webhook")
NOTIFY_WEBHOOK_DISABLED = Job("reporting.notify_webhook_disabled")
