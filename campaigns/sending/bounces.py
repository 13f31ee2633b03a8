"""Bounces (RFC 3464 DSNs) and complaints (RFC 5965 ARF reports).

Reports reach LuxMail two ways: the bounce server (``manage.py run_bounce_server``)
receiving mail for the VERP return path ``bounces+<token>@<domain>``, or the API
(``POST /api/v1/bounces/``) fed by an upstream relay. Both call
:func:`bounce_process`.

The message a report is about is found from, in order: the VERP token of the envelope
recipient, the VERP address in the report's own headers (To, Delivered-To,
X-Original-To), then the returned original headers (Return-Path, Message-ID). Tokens
are signed, so a forged report cannot name an arbitrary message.

Effects (one rule, :func:`classify`, for DSNs and for 5xx replies received during the
SMTP dialogue): an address-level hard bounce (5.1.x) or a complaint suppresses the
address at once (contacts' ``suppression_add``: status ``bounced``/``complained``)
and marks the message ``bounced``; any other hard bounce (policy, content) marks it
``failed`` without suppressing; soft bounces are counted per contact and suppress
after ``LUXMAIL_SOFT_BOUNCE_LIMIT`` within 30 days.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message as EmailMessage
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.models import BounceEvent, BounceKind, Message, MessageState
from campaigns.sending import feedback, tokens
from contacts import services as contact_services
from luxmail import audit, conf
from luxmail.actors import Actor
from luxmail.logging import redact

_VERP = re.compile(r"bounces\+([a-z2-7]{29})@", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<([a-z2-7]{29})\.\d+@", re.IGNORECASE)
MAX_REPORT_BYTES = 2 * 1024 * 1024
SOFT_WINDOW = timedelta(days=30)


class BounceError(Exception):
    """The document is not a delivery-status or feedback report LuxMail can use."""


@dataclass
class Report:
    kind: str  # BounceKind
    status: str
    diagnostic: str


@dataclass
class Parsed:
    reports: list[Report]
    header_tokens: list[str]


def _text(value: Any) -> str:
    return " ".join(str(value or "").split())


@dataclass(frozen=True)
class Verdict:
    """What a refusal means, whether it came in a DSN or during the SMTP dialogue."""

    kind: str  # BounceKind.HARD or BounceKind.SOFT
    # The reason is the address itself (RFC 3463 class 5.1.x: bad mailbox or domain):
    # suppress it at once. Other permanent refusals (policy, content, …) fail the message
    # without suppressing the address.
    address_level: bool


_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def enhanced_status(reply: str) -> str:
    """The RFC 3463 status in an SMTP reply text (``"5.1.1"``), or ``""``."""
    return feedback.enhanced_status(reply)


def classify(*, status: str, action: str = "failed", reply: str = "") -> Verdict | None:
    """The one classification of refusals, used by the DSN path (:func:`bounce_process`)
    and the synchronous path (:func:`refusal_record`, a 5xx at RCPT or DATA).

    ``None`` when the report is not a refusal (delivered, relayed, expanded).
    """
    action = action.lower()
    found = feedback.classify(status=status, reply=reply, action=action)
    if found is None:
        return None
    if status.startswith("5"):
        # Address-level = the reason is the recipient's for good (feedback.is_hard).
        return Verdict(BounceKind.HARD, found.hard)
    if status.startswith("4") or action == "delayed":
        return Verdict(BounceKind.SOFT, False)
    if action == "failed":
        return Verdict(BounceKind.HARD, False)
    return None


def _status_kind(action: str, status: str) -> str | None:
    verdict = classify(status=status, action=action)
    return verdict.kind if verdict else None


def _delivery_status(part: EmailMessage) -> list[Report]:
    reports: list[Report] = []
    groups = part.get_payload()
    if not isinstance(groups, list):
        return reports
    for group in groups[1:] if len(groups) > 1 else groups:
        if not isinstance(group, EmailMessage):
            continue
        action = _text(group.get("Action"))
        status = _text(group.get("Status")).split(" ")[0]
        kind = _status_kind(action, status)
        if kind is None:
            continue
        diagnostic = redact(_text(group.get("Diagnostic-Code")))[:480]
        reports.append(Report(kind, status[:16], diagnostic))
    return reports


def _feedback(part: EmailMessage) -> list[Report]:
    groups = part.get_payload()
    fields = groups[0] if isinstance(groups, list) and groups else part
    if not isinstance(fields, EmailMessage):
        fields = part
    feedback_type = _text(fields.get("Feedback-Type")).lower() or "abuse"
    if feedback_type in ("not-spam",):
        return []
    return [Report(BounceKind.COMPLAINT, "", f"feedback-type: {feedback_type}"[:480])]


def _header_tokens(document: EmailMessage) -> list[str]:
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
    return [t.lower() for t in found]


def parse(raw: bytes) -> Parsed:
    """Read a DSN or ARF document; raises :class:`BounceError` when it is neither."""
    try:
        read = feedback.parse(raw)
    except feedback.FeedbackError as error:
        raise BounceError(str(error)) from error
    if read.kind is feedback.FeedbackKind.UNRECOGNIZED:
        raise BounceError("This is not a bounce or a feedback report LuxMail can read.")
    reports: list[Report] = []
    if read.kind is feedback.FeedbackKind.COMPLAINT and read.feedback_type != "not-spam":
        reports.append(Report(BounceKind.COMPLAINT, "", f"feedback-type: {read.feedback_type}"))
    for finding in read.findings:
        kind = _status_kind(finding.action, finding.status)
        if kind is not None:
            reports.append(Report(kind, finding.status[:16], redact(finding.reply)[:480]))
    return Parsed(reports, list(read.header_tokens))


def _message_for(tokens_found: Iterable[str]) -> Message | None:
    for token in tokens_found:
        try:
            message_id = tokens.read(tokens.BOUNCE, token.lower())
        except tokens.InvalidToken:
            continue
        message = Message.objects.filter(pk=message_id).select_related("contact").first()
        if message is not None:
            return message
    return None


@dataclass
class Outcome:
    events: int = 0
    suppressed: int = 0
    unmatched: int = 0


def bounce_process(
    *,
    raw: bytes,
    source: str,
    envelope_recipients: Iterable[str] = (),
    actor: Actor = None,
    request: HttpRequest | None = None,
) -> Outcome:
    """Record what a DSN/ARF document reports and suppress where needed. Idempotent per
    message and kind for hard bounces and complaints (the address is suppressed once).

    Raises :class:`BounceError` for documents that are not reports. Audits
    ``bounce.record`` per event (ids, kind and status only).
    """
    parsed = parse(raw)
    envelope_tokens = [t.lower() for r in envelope_recipients for t in _VERP.findall(r)]
    message = _message_for([*envelope_tokens, *parsed.header_tokens])
    outcome = Outcome()
    if message is None:
        outcome.unmatched = len(parsed.reports) or 1
        audit.record(
            "bounce.unmatched",
            actor=actor or f"bounces:{source}",
            request=request,
            details={"reports": len(parsed.reports), "source": source},
        )
        return outcome
    for report in parsed.reports:
        if _record(message, report, source=source, actor=actor, request=request):
            outcome.suppressed += 1
        outcome.events += 1
    return outcome


SYNC_SOURCE = "smtp-dialogue"


def sync_state(*, code: int | None, reply: str) -> str | None:
    """The state of a message refused with ``code``/``reply`` during the SMTP dialogue:
    ``bounced`` when the refusal is address-level, ``failed`` for any other 5xx, and
    ``None`` when it is not a permanent refusal. Same rule as a DSN (:func:`classify`).
    """
    if code is None or not 500 <= code < 600:
        return None
    verdict = classify(status=enhanced_status(reply) or "5")
    return MessageState.BOUNCED if verdict and verdict.address_level else MessageState.FAILED


def refusal_record(*, message_id: int, code: int, reply: str) -> bool:
    """Record a 5xx received at RCPT or DATA like the same refusal arriving as a DSN:
    a hard bounce event, and suppression when it is address-level. The message's state
    is written by the send pipeline (:func:`sync_state`). Returns whether the address
    was suppressed.
    """
    message = Message.objects.filter(pk=message_id).select_related("contact", "campaign").first()
    if message is None:
        return False
    status = enhanced_status(reply) or str(code)
    report = Report(BounceKind.HARD, status[:16], redact(reply)[:480])
    return _record(message, report, source=SYNC_SOURCE, actor=None, request=None, set_state=False)


def _record(
    message: Message,
    report: Report,
    *,
    source: str,
    actor: Actor,
    request: HttpRequest | None,
    set_state: bool = True,
) -> bool:

    contact = message.contact
    label = actor or f"bounces:{source}"
    verdict = classify(status=report.status) if report.kind == BounceKind.HARD else None
    address_level = verdict.address_level if verdict else False
    with transaction.atomic():
        event = BounceEvent.objects.create(
            message=message,
            contact=contact,
            kind=report.kind,
            status=report.status,
            diagnostic=report.diagnostic,
            source=source,
        )
        suppress_reason = None
        if report.kind == BounceKind.HARD and address_level:
            suppress_reason = "hard_bounce"
        elif report.kind == BounceKind.COMPLAINT:
            suppress_reason = "complaint"
        elif contact is not None:
            recent = BounceEvent.objects.filter(
                contact=contact,
                kind=BounceKind.SOFT,
                received_at__gte=timezone.now() - SOFT_WINDOW,
            ).count()
            if recent >= conf.soft_bounce_limit():
                suppress_reason = "hard_bounce"
        # A complaint is about a delivered message; anything else that suppresses means
        # the message did not arrive. A hard refusal that is not address-level (policy,
        # content) fails the message without suppressing the address.
        state = None
        if suppress_reason is not None and report.kind != BounceKind.COMPLAINT:
            state = MessageState.BOUNCED
        elif report.kind == BounceKind.HARD:
            state = MessageState.FAILED
        if (
            set_state
            and state is not None
            and message.state in (MessageState.SENT, MessageState.UNKNOWN, MessageState.DEFERRED)
        ):
            Message.objects.filter(pk=message.pk).update(state=state, smtp_reply=report.diagnostic)
        if suppress_reason and contact is not None:
            note = (
                f"{report.kind} bounce {report.status}".strip()
                if report.kind != BounceKind.SOFT
                else "repeated soft bounces"
            )
            contact_services.suppression_add(
                reason=suppress_reason, contact=contact, actor=label, note=note, request=request
            )
            BounceEvent.objects.filter(pk=event.pk).update(suppressed=True)
        audit.record(
            "bounce.record",
            actor=label,
            request=request,
            target=message.campaign,
            details={
                "message_id": message.pk,
                "kind": report.kind,
                "status": report.status,
                "source": source,
                "suppressed": bool(suppress_reason),
            },
        )
    return bool(suppress_reason)
