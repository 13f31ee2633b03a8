"""The tasks portal's services start, by name (see luxmail/jobs.py for why)."""

from luxmail.jobs import Job

NOTIFY_REPLY = Job("portal.tasks.notify_reply")
NOTIFY_RECIPIENT = Job("portal.tasks.notify_recipient")
