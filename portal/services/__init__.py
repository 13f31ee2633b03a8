"""Writes of the recipients' secure-message portal (issue 5, docs/security.md).

One module per entity or use case.

Lifecycle of a portal message:

1. **Create** (:func:`portal_message_for_delivery`, from the send pipeline when the
   channel is ``portal``): subject, HTML and text stored encrypted; expiry from the org
   setting; the notice e-mailed instead carries no PHI, only an opaque link.
2. **Code** (:func:`portal_code_send`): a 6-digit code e-mailed on demand to the
   address the message was sent to; valid 10 minutes, single use, stored as a keyed
   hash; one per minute and five per hour at most.
3. **Verify** (:func:`portal_verify`): the code (and the date of birth when the org
   requires it and one is on file). Five wrong answers lock the message.
4. **Read / reply** in a portal session scoped to that one message that idles out
   after 10 minutes (:func:`portal_session_resolve`, :func:`portal_message_open`,
   :func:`portal_reply_create`).
5. Staff **revoke** (:func:`portal_message_revoke`) or **unlock** it, and read replies
   (:func:`portal_reply_reveal`, PHI permission, audited).
6. Staff **answer** in the portal, with attachments, assign and close the conversation
   (``portal/services/conversations.py``); the patient reads the thread in step 4.

Every verification, view, reply, failure and lockout writes an audit event whose
details hold ids and codes only.

Re-exported here by name because many callers (views, API, tasks, tests) use
``portal.services.<name>``; new code may import from the submodule.
"""

from portal.selectors import link_hash
from portal.services.codes import (
    Verified,
    birth_date_required,
    portal_code_send,
    portal_verify,
)
from portal.services.config import (
    CODE_DIGITS,
    MAX_REPLIES_PER_MESSAGE,
    MAX_REPLY_CHARS,
    RECIPIENT,
    PortalDeliveryFailed,
    PortalError,
    PortalNoCode,
    PortalRateLimited,
    PortalReplyInvalid,
    PortalUnavailable,
    PortalVerifyFailed,
    code_interval,
    code_ttl,
    codes_per_hour,
    idle_seconds,
    max_attempts,
)
from portal.services.messages import (
    notice_content,
    portal_message_create,
    portal_message_for_delivery,
)
from portal.services.reading import (
    PortalContent,
    ReplyView,
    portal_message_open,
    portal_reply_create,
    portal_reply_notify,
)
from portal.services.sessions import (
    portal_session_end,
    portal_session_resolve,
)
from portal.services.staff import (
    portal_message_reveal,
    portal_message_revoke,
    portal_message_unlock,
    portal_reply_reveal,
)
from portal.services.tokens import (
    _key,
    link_token,
    link_url,
    session_hash,
)

__all__ = [
    "CODE_DIGITS",
    "MAX_REPLIES_PER_MESSAGE",
    "MAX_REPLY_CHARS",
    "RECIPIENT",
    "PortalContent",
    "PortalDeliveryFailed",
    "PortalError",
    "PortalNoCode",
    "PortalRateLimited",
    "PortalReplyInvalid",
    "PortalUnavailable",
    "PortalVerifyFailed",
    "ReplyView",
    "Verified",
    "_key",
    "birth_date_required",
    "code_interval",
    "code_ttl",
    "codes_per_hour",
    "idle_seconds",
    "link_hash",
    "link_token",
    "link_url",
    "max_attempts",
    "notice_content",
    "portal_code_send",
    "portal_message_create",
    "portal_message_for_delivery",
    "portal_message_open",
    "portal_message_reveal",
    "portal_message_revoke",
    "portal_message_unlock",
    "portal_reply_create",
    "portal_reply_notify",
    "portal_reply_reveal",
    "portal_session_end",
    "portal_session_resolve",
    "portal_verify",
    "session_hash",
]
