"""Writes of journeys: create, edit the draft, publish, activate, pause, resume, archive,
enroll (manual and API events). Each service owns its transaction and audits what it
changes with ids and counts only (docs/architecture.md "Journeys").

Editing never touches a published version: the first edit of a journey that has one
copies it into a draft (version N+1); publishing the draft makes it current for new
enrollments while running enrollments finish on the version they started on.

One module per use case, re-exported here by name because many callers (views, API,
tasks, tests) use
``campaigns.journeys.services.<name>``; new code may import from the submodule.
"""

from campaigns.journeys.services.definitions import (
    definition_of,
    draft_version,
    journey_create,
    journey_set_definition,
    journey_set_settings,
    journey_update,
    version_problems,
)
from campaigns.journeys.services.enrollment import (
    EventResult,
    enroll_contact,
    enrollment_remove,
    journey_event_receive,
    reentry_block,
)
from campaigns.journeys.services.errors import (
    PHI_REFUSED,
    EnrollmentRefused,
    IdempotencyConflict,
    PhiRefused,
    TransitionError,
    _lock,
    _user,
)
from campaigns.journeys.services.publishing import (
    journey_activate,
    journey_archive,
    journey_pause,
    journey_publish,
    journey_resume,
    step_campaign_create,
)
from campaigns.journeys.services.steps import (
    journey_discard_draft,
    step_add,
    step_remove,
    step_update,
)

__all__ = [
    "PHI_REFUSED",
    "EnrollmentRefused",
    "EventResult",
    "IdempotencyConflict",
    "PhiRefused",
    "TransitionError",
    "_lock",
    "_user",
    "definition_of",
    "draft_version",
    "enroll_contact",
    "enrollment_remove",
    "journey_activate",
    "journey_archive",
    "journey_create",
    "journey_discard_draft",
    "journey_event_receive",
    "journey_pause",
    "journey_publish",
    "journey_resume",
    "journey_set_definition",
    "journey_set_settings",
    "journey_update",
    "reentry_block",
    "step_add",
    "step_campaign_create",
    "step_remove",
    "step_update",
    "version_problems",
]
