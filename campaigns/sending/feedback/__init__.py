"""Reading the mail that receivers send back: bounces (RFC 3464 DSNs and the common
non-standard formats), complaints (RFC 5965 ARF and its variants), authentication-failure
and DMARC reports, and auto-replies.

Pure: bytes in, :class:`~campaigns.sending.feedback.types.Feedback` out, no database.
:mod:`campaigns.sending.bounces` applies what is read (events, suppression, sender health).
"""

from campaigns.sending.feedback.classifier import classify, enhanced_status
from campaigns.sending.feedback.reader import MAX_BYTES, FeedbackError, parse
from campaigns.sending.feedback.types import (
    SCOPE,
    Classification,
    Feedback,
    FeedbackKind,
    Finding,
    Reason,
    Scope,
    is_hard,
)

__all__ = [
    "MAX_BYTES",
    "SCOPE",
    "Classification",
    "Feedback",
    "FeedbackError",
    "FeedbackKind",
    "Finding",
    "Reason",
    "Scope",
    "classify",
    "enhanced_status",
    "is_hard",
    "parse",
]
