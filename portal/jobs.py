"""The tasks portal's services start, by name (see luxmail/jobs.py for why)."""

from luxmail.jobs import Job

NOTIFY_REPLY = Job("portal.tasks.notify_reply")
