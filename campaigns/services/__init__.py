"""Writes of the campaigns app: templates, sender identities, campaigns, messages.

One module per entity or use case.

Every service owns its transaction, audits what it changes (ids and codes only) and
enqueues Celery work with ``transaction.on_commit``. See docs/architecture.md
"Sending pipeline" for the states and guarantees.

Every service owns its transaction, audits what it changes (ids and codes only) and
enqueues Celery work with ``transaction.on_commit``. See docs/architecture.md
"Sending pipeline" for the states and guarantees.

Re-exported here by name because many callers (views, API, tasks, tests) use
``campaigns.services.<name>``; new code may import from the submodule.
"""

from campaigns.services.approvals import (
    ApprovalForbidden,
    ApprovalRequired,
    approval_decide,
    approval_request,
    approval_status,
)
from campaigns.services.campaigns import (
    MAX_SEED_ADDRESSES,
    _enqueue_chains,
    campaign_cancel,
    campaign_create,
    campaign_finish_if_done,
    campaign_halt,
    campaign_is_sending,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_start,
    campaign_test_send,
    campaign_update,
    campaigns_recover,
    campaigns_start_due,
    message_resend,
    past_time_message,
    seed_addresses,
    seed_addresses_text,
    send_parallelism,
)
from campaigns.services.duplicate import campaign_duplicate
from campaigns.services.editor import (
    editor_block_create,
    editor_block_delete,
    template_from_library,
)
from campaigns.services.errors import (
    CampaignError,
    TransitionError,
    _user,
)
from campaigns.services.feedback import (
    FeedbackPolicyError,
    feedback_policy_update,
    unparsed_reprocess,
    unparsed_reprocess_pending,
)
from campaigns.services.identities import (
    sender_allow_without_dkim,
    sender_create,
    sender_generate_dkim,
)
from campaigns.services.locked_footer import (
    LockedFooterMissing,
    template_add_footer,
)
from campaigns.services.presend import (
    PresendBlocked,
    presend_check,
    presend_links_probe,
    presend_override,
    presend_require,
)
from campaigns.services.signing_keys import (
    org_signing_key_remove,
    org_signing_key_set,
)
from campaigns.services.templates import (
    _with_footer,
    template_create,
    template_preview,
    template_update,
)

__all__ = [
    "MAX_SEED_ADDRESSES",
    "ApprovalForbidden",
    "ApprovalRequired",
    "CampaignError",
    "FeedbackPolicyError",
    "LockedFooterMissing",
    "PresendBlocked",
    "TransitionError",
    "_enqueue_chains",
    "_user",
    "_with_footer",
    "approval_decide",
    "approval_request",
    "approval_status",
    "campaign_cancel",
    "campaign_create",
    "campaign_duplicate",
    "campaign_finish_if_done",
    "campaign_halt",
    "campaign_is_sending",
    "campaign_pause",
    "campaign_resume",
    "campaign_schedule",
    "campaign_start",
    "campaign_test_send",
    "campaign_update",
    "campaigns_recover",
    "campaigns_start_due",
    "editor_block_create",
    "editor_block_delete",
    "feedback_policy_update",
    "message_resend",
    "org_signing_key_remove",
    "org_signing_key_set",
    "past_time_message",
    "presend_check",
    "presend_links_probe",
    "presend_override",
    "presend_require",
    "seed_addresses",
    "seed_addresses_text",
    "send_parallelism",
    "sender_allow_without_dkim",
    "sender_create",
    "sender_generate_dkim",
    "template_add_footer",
    "template_create",
    "template_from_library",
    "template_preview",
    "template_update",
    "unparsed_reprocess",
    "unparsed_reprocess_pending",
]
