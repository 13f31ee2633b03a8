"""Temporary adapter: builds the parser contract's :class:`Feedback` from the RFC 3464 /
RFC 5965 reading LuxMail had before issue 14, so the effects (policy, sender health,
auto-pause) run and are tested before the new parser lands.

# integration: replaced by campaigns.sending.feedback.parse / campaigns.sending.feedback.classify
#
# The whole module goes: ``campaigns.sending.bounces`` imports :func:`parse` and
# :func:`classify` from here in exactly one place (marked ``# integration:`` there), and
# the integrator points that import at ``campaigns.sending.feedback`` instead (its parse
# errors become :class:`campaigns.sending.bounces.BounceError`).
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message as EmailMessage

from campaigns.sending.feedback.types import (
    SCOPE,
    Classification,
    Feedback,
    FeedbackKind,
    Finding,
    Reason,
    is_hard,
)

MAX_REPORT_BYTES = 2 * 1024 * 1024
_VERP = re.compile(r"bounces\+([a-z2-7]{29})@", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<([a-z2-7]{29})\.\d+@", re.IGNORECASE)
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


class NotMail(ValueError):
    """The bytes are not an e-mail message at all, or larger than LuxMail reads."""


def _text(value: object) -> str:
    return " ".join(str(value or "").split())


# (status prefix, reason) — most specific first.
_STATUS: tuple[tuple[str, Reason], ...] = (
    ("5.1.10", Reason.HOST_UNKNOWN),
    ("5.1.1", Reason.USER_UNKNOWN),
    ("5.1.2", Reason.HOST_UNKNOWN),
    ("5.1.3", Reason.USER_UNKNOWN),
    ("5.1.6", Reason.MAILBOX_DISABLED),
    ("5.1.8", Reason.POLICY),
    ("5.2.1", Reason.MAILBOX_DISABLED),
    ("4.2.1", Reason.SUSPENDED),
    ("5.2.2", Reason.MAILBOX_FULL),
    ("4.2.2", Reason.MAILBOX_FULL),
    ("5.2.3", Reason.MESSAGE_TOO_BIG),
    ("5.3.4", Reason.MESSAGE_TOO_BIG),
    ("5.4.4", Reason.HOST_UNKNOWN),
    ("4.4.7", Reason.EXPIRED),
    ("5.4.7", Reason.EXPIRED),
    ("4.4.", Reason.NETWORK_ERROR),
    ("5.4.6", Reason.SYSTEM_ERROR),
    ("5.7.1", Reason.POLICY),
    ("5.7.23", Reason.AUTH_FAILURE),
    ("5.7.25", Reason.BLOCKED),
    ("5.7.26", Reason.AUTH_FAILURE),
    ("5.7.27", Reason.HOST_UNKNOWN),
    ("4.7.", Reason.RATE_LIMITED),
    ("5.7.", Reason.POLICY),
    ("5.5.", Reason.SYNTAX_ERROR),
    ("5.3.", Reason.SYSTEM_ERROR),
    ("4.3.", Reason.SYSTEM_ERROR),
    ("5.2.", Reason.MAILBOX_DISABLED),
    ("4.2.", Reason.MAILBOX_FULL),
)

# Text rules that refine a generic code (5.0.0, 5.7.1, 5.5.0): first match wins.
_TEXT: tuple[tuple[re.Pattern[str], Reason], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in (
        (r"dmarc|spf |spf:|dkim|authenticat", Reason.AUTH_FAILURE),
        (r"spamhaus|blocklist|blacklist|block ?list|reputation|blocked using|rbl", Reason.BLOCKED),
        (r"spam", Reason.SPAM_DETECTED),
        (r"virus|attachment|content", Reason.CONTENT_REJECTED),
        (r"relay(ing)? (access )?denied|not permitted to relay", Reason.RELAYING_DENIED),
        (r"too many|rate limit|try again later", Reason.RATE_LIMITED),
        (
            r"user unknown|no such user|does not exist|unknown user|invalid recipient"
            r"|recipient address rejected|mailbox unavailable|not found",
            Reason.USER_UNKNOWN,
        ),
        (r"mailbox (is )?full|quota|over ?quota|insufficient storage", Reason.MAILBOX_FULL),
        (r"disabled|deactivated|inactive|suspended", Reason.MAILBOX_DISABLED),
    )
)
_GENERIC = ("5.0.0", "5.7.1", "5.5.0", "5.7.0", "5.1.0", "4.0.0", "")


def classify(*, status: str, reply: str = "", action: str = "failed") -> Classification | None:
    """The reason of one refusal (``None`` for delivered/relayed/expanded)."""
    action = action.lower() or "failed"
    if action in ("delivered", "relayed", "expanded"):
        return None
    status = status or (_ENHANCED.search(reply[:200]) or [""])[0]
    reason: Reason | None = None
    rule = ""
    if status in _GENERIC or not status:
        for pattern, candidate in _TEXT:
            if pattern.search(reply[:1000]):
                reason, rule = candidate, f"text:{pattern.pattern[:60]}"
                break
    if reason is None:
        for prefix, candidate in _STATUS:
            if status == prefix or (prefix.endswith(".") and status.startswith(prefix)):
                reason, rule = candidate, f"status:{prefix}"
                break
    if reason is None:
        reason = Reason.EXPIRED if action == "delayed" else Reason.UNDEFINED
        rule = f"default:{action}"
    return Classification(reason=reason, hard=is_hard(reason), scope=SCOPE[reason], rule=rule)


def _findings(part: EmailMessage) -> list[Finding]:
    found: list[Finding] = []
    groups = part.get_payload()
    if not isinstance(groups, list):
        return found
    remote_default = ""
    for group in groups:
        if not isinstance(group, EmailMessage):
            continue
        if group.get("Reporting-MTA") and not group.get("Action"):
            continue  # the per-message group
        recipient = _text(group.get("Final-Recipient") or group.get("Original-Recipient"))
        recipient = recipient.split(";", 1)[-1].strip().strip("<>").lower()
        action = _text(group.get("Action")).lower() or "failed"
        status = _text(group.get("Status")).split(" ")[0][:16]
        reply = _text(group.get("Diagnostic-Code"))
        reply = reply.split(";", 1)[-1].strip() if ";" in reply[:12] else reply
        remote = _text(group.get("Remote-MTA")).split(";", 1)[-1].strip() or remote_default
        classification = classify(status=status, reply=reply, action=action)
        if classification is None:
            continue
        found.append(Finding(recipient, action, status, reply, classification, remote))
    return found


def _header_tokens(document: EmailMessage) -> tuple[str, ...]:
    found: list[str] = []
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To"):
        for value in document.get_all(name, []):
            found += _VERP.findall(str(value))
    for part in document.walk():
        content_type = part.get_content_type()
        if content_type in ("text/rfc822-headers", "message/rfc822"):
            if content_type == "message/rfc822":
                inner = part.get_payload()
                original = inner[0] if isinstance(inner, list) and inner else None
                text = original.as_string() if isinstance(original, EmailMessage) else ""
            else:
                raw = part.get_payload(decode=True) or b""
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            header_block = text.split("\n\n", 1)[0]
            found += _VERP.findall(header_block)
            found += _MESSAGE_ID.findall(header_block)
    return tuple(t.lower() for t in found)


def _arf(part: EmailMessage) -> tuple[str, tuple[str, ...]]:
    groups = part.get_payload()
    fields = groups[0] if isinstance(groups, list) and groups else part
    if not isinstance(fields, EmailMessage):
        fields = part
    feedback_type = _text(fields.get("Feedback-Type")).lower() or "abuse"
    recipients = tuple(
        _text(value).lower() for value in fields.get_all("Original-Rcpt-To", []) if value
    )
    return feedback_type, recipients


def _domain(value: str) -> str:
    address = value.rsplit("<", 1)[-1].strip(" >")
    return address.rsplit("@", 1)[-1].lower() if "@" in address else ""


_ARCHIVES = ("application/zip", "application/gzip", "application/x-gzip")


def parse(raw: bytes) -> Feedback:
    """Read one mail; never raises for mail (``UNRECOGNIZED`` when nothing is read)."""
    if len(raw) > MAX_REPORT_BYTES:
        raise NotMail("The report is larger than 2 MB.")
    head = raw[:4096].lstrip()
    if not head or b":" not in head.split(b"\n", 1)[0]:
        raise NotMail("This is not an e-mail message.")
    document = email.message_from_bytes(raw, policy=email.policy.compat32)
    tokens = _header_tokens(document)
    subject = _text(document.get("Subject"))
    findings: list[Finding] = []
    for part in document.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            findings += _findings(part)
        elif content_type == "message/feedback-report":
            feedback_type, recipients = _arf(part)
            kind = (
                FeedbackKind.AUTH_FAILURE_REPORT
                if feedback_type == "auth-failure"
                else FeedbackKind.COMPLAINT
            )
            return Feedback(
                kind,
                format="arf",
                provider=_domain(_text(document.get("From"))),
                feedback_type=feedback_type,
                header_tokens=tokens,
                complained_recipients=recipients,
            )
        elif content_type in _ARCHIVES and subject.lower().startswith("report domain:"):
            return Feedback(
                FeedbackKind.DMARC_REPORT,
                format="dmarc",
                provider=_domain(_text(document.get("From"))),
            )
    has_dsn = any(p.get_content_type() == "message/delivery-status" for p in document.walk())
    if not has_dsn:
        auto = _text(document.get("Auto-Submitted")).lower()
        if auto.startswith("auto-replied") or document.get("X-Autoreply"):
            return Feedback(FeedbackKind.AUTO_REPLY, format="rfc3834", header_tokens=tokens)
        return Feedback(FeedbackKind.UNRECOGNIZED, header_tokens=tokens)
    if not findings:
        return Feedback(FeedbackKind.DELIVERED, format="rfc3464", header_tokens=tokens)
    return Feedback(
        FeedbackKind.BOUNCE, findings=tuple(findings), format="rfc3464", header_tokens=tokens
    )
