"""The vocabulary of mail feedback: reasons, who is at fault, and what a report says.

Reasons follow the established bounce-classification projects (Sisimai's reason list,
Mailman's bounce detectors) so labels can be compared with theirs; ``docs/bounces.md``
lists each reason with examples and the suppression policy applied to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Reason(StrEnum):
    # The recipient's address is wrong or gone: suppress at once.
    USER_UNKNOWN = "user_unknown"
    HOST_UNKNOWN = "host_unknown"  # no such domain, or it accepts no mail (null MX)
    MAILBOX_DISABLED = "mailbox_disabled"  # closed, deactivated, moved
    # The recipient's mailbox cannot take mail for now: suppress after repeated bounces.
    MAILBOX_FULL = "mailbox_full"
    SUSPENDED = "suspended"  # mailbox suspended or inactive for now
    # The receiver refuses *us* (our message, IP, domain or authentication): never the
    # recipient's fault, never suppresses; raises a sender-health event instead.
    MESSAGE_TOO_BIG = "message_too_big"
    CONTENT_REJECTED = "content_rejected"  # content, virus, attachment type
    SPAM_DETECTED = "spam_detected"
    POLICY = "policy"  # local policy, recipient-side filters, not-compliant RFC
    AUTH_FAILURE = "auth_failure"  # DMARC, SPF, DKIM
    BLOCKED = "blocked"  # IP/domain reputation, blocklists, missing PTR
    RATE_LIMITED = "rate_limited"  # too many connections/messages
    RELAYING_DENIED = "relaying_denied"
    SYNTAX_ERROR = "syntax_error"  # SMTP protocol/syntax errors from our side
    # Transient trouble on the way: neither party's address is to blame.
    EXPIRED = "expired"  # delivery timed out in a queue
    NETWORK_ERROR = "network_error"
    SYSTEM_ERROR = "system_error"  # receiver's system error, disk full, misconfiguration
    # Not a bounce.
    VACATION = "vacation"
    UNDEFINED = "undefined"


class Scope(StrEnum):
    """Who a reason points at, which decides the suppression policy."""

    RECIPIENT_PERMANENT = "recipient_permanent"
    RECIPIENT_TRANSIENT = "recipient_transient"
    SENDER = "sender"
    TRANSIENT = "transient"
    NONE = "none"


SCOPE: dict[Reason, Scope] = {
    Reason.USER_UNKNOWN: Scope.RECIPIENT_PERMANENT,
    Reason.HOST_UNKNOWN: Scope.RECIPIENT_PERMANENT,
    Reason.MAILBOX_DISABLED: Scope.RECIPIENT_PERMANENT,
    Reason.MAILBOX_FULL: Scope.RECIPIENT_TRANSIENT,
    Reason.SUSPENDED: Scope.RECIPIENT_TRANSIENT,
    Reason.MESSAGE_TOO_BIG: Scope.SENDER,
    Reason.CONTENT_REJECTED: Scope.SENDER,
    Reason.SPAM_DETECTED: Scope.SENDER,
    Reason.POLICY: Scope.SENDER,
    Reason.AUTH_FAILURE: Scope.SENDER,
    Reason.BLOCKED: Scope.SENDER,
    Reason.RATE_LIMITED: Scope.SENDER,
    Reason.RELAYING_DENIED: Scope.SENDER,
    Reason.SYNTAX_ERROR: Scope.SENDER,
    Reason.EXPIRED: Scope.TRANSIENT,
    Reason.NETWORK_ERROR: Scope.TRANSIENT,
    Reason.SYSTEM_ERROR: Scope.TRANSIENT,
    Reason.VACATION: Scope.NONE,
    Reason.UNDEFINED: Scope.TRANSIENT,
}


def is_hard(reason: Reason) -> bool:
    """A hard bounce is one the recipient's address causes for good (the meaning the
    bounce-classification projects give "hard"); everything else is soft."""
    return SCOPE[reason] is Scope.RECIPIENT_PERMANENT


class FeedbackKind(StrEnum):
    BOUNCE = "bounce"  # a delivery failure or delay (DSN or a non-standard bounce)
    DELIVERED = "delivered"  # a DSN that reports success only (NOTIFY=SUCCESS, relayed)
    COMPLAINT = "complaint"  # ARF abuse/fraud/virus/other, JMRP, header-only abuse reports
    AUTH_FAILURE_REPORT = "auth_failure_report"  # RFC 6591 (ARF feedback-type auth-failure)
    DMARC_REPORT = "dmarc_report"  # RFC 7489 aggregate report
    AUTO_REPLY = "auto_reply"  # vacation / out-of-office (RFC 3834)
    UNRECOGNIZED = "unrecognized"  # mail, but nothing LuxMail can read in it


@dataclass(frozen=True, slots=True)
class Classification:
    """What a refusal means, from its status code, reply text and the MTA's diagnostic."""

    reason: Reason
    hard: bool
    scope: Scope
    rule: str  # which rule matched, e.g. "status:5.1.1" or "text:mailbox is full"


@dataclass(frozen=True, slots=True)
class Finding:
    """One recipient in a bounce report."""

    recipient: str  # final (or original) recipient address, lower-cased; "" if unknown
    action: str  # RFC 3464 action: failed, delayed, delivered, relayed, expanded
    status: str  # RFC 3463 enhanced status ("5.1.1"), or "" when the report has none
    reply: str  # the diagnostic / SMTP reply text (not yet redacted)
    classification: Classification
    remote_mta: str = ""  # the receiving host that refused, when stated


@dataclass(frozen=True, slots=True)
class Feedback:
    """Everything LuxMail reads in one mail sent back to it."""

    kind: FeedbackKind
    findings: tuple[Finding, ...] = ()
    # The detector that read it ("rfc3464", "exim", "qmail", "arf", …): evidence and stats.
    format: str = ""
    # Receiving provider or reporting organization when known ("gmail.com", "yahoo.com").
    provider: str = ""
    # ARF: the Feedback-Type (abuse, fraud, virus, other, auth-failure, not-spam, …).
    feedback_type: str = ""
    # VERP tokens and message-id tokens found in the returned headers (lower-cased).
    header_tokens: tuple[str, ...] = ()
    # Recipient addresses named by a complaint (Original-Rcpt-To, Removal-Recipient).
    complained_recipients: tuple[str, ...] = field(default_factory=tuple)
