"""The tasks journeys' services start, by name (see luxmail/jobs.py for why)."""

from luxmail.jobs import Job

ADVANCE = Job("journeys.advance")
EVALUATE_TRIGGERS = Job("journeys.evaluate_triggers")
