"""Applying mail feedback: bounces, complaints, sender-health evidence, unread mail.

Reports reach LuxMail two ways: the bounce server (``manage.py run_bounce_server``)
receiving mail for the VERP return path ``bounces+<token>@<domain>``, or the API
(``POST /api/v1/bounces/``) fed by an upstream relay. Both call :func:`bounce_process`;
a 5xx during the SMTP dialogue calls :func:`refusal_record`. Reading is the parser's
job (``campaigns.sending.feedback``): bytes in, a ``Feedback`` out.

The message a report is about is found from, in order: the VERP token of the envelope
recipient, the VERP address in the report's own headers, then the returned original
headers (Return-Path, Message-ID). Tokens are signed, so a forged report cannot name an
arbitrary message.

Effects, by the reason's scope (policy: :mod:`campaigns.sending.policy`, documented in
docs/operations.md "Bounces, complaints and sender health"):

* recipient-permanent (user unknown, host unknown, mailbox disabled): suppress at once;
* recipient-transient (mailbox full, suspended): suppress after N in D days;
* sender-side (DMARC, blocklists, content, rate limits, …): never suppress; a
  sender-health event (:class:`~campaigns.models.SenderEvent`) instead;
* transient (expired, network, system, undefined): never suppress;
* complaint (ARF): suppress for marketing, audited; auth-failure (RFC 6591) and DMARC
  aggregate reports are sender-health evidence only, never complaints;
* auto-replies and success DSNs: nothing.

Mail that yields nothing is never refused: it is kept encrypted
(:class:`~campaigns.models.UnparsedFeedback`) for reprocessing. After each event the
campaign's rates are checked for auto-pause (:mod:`campaigns.sending.health`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from campaigns.models import (
    BounceEvent,
    BounceKind,
    Message,
    MessageState,
    SenderEvent,
    SenderEventKind,
    UnparsedFeedback,
    UnparsedState,
)
from campaigns.sending import health, policy, tokens
from campaigns.sending.feedback import MAX_BYTES, FeedbackError, classify, enhanced_status, parse
from campaigns.sending.feedback.types import (
    Classification,
    Feedback,
    FeedbackKind,
    Finding,
    Scope,
)
from contacts import services as contact_services
from contacts import upsert
from luxmail import audit, crypto
from luxmail.actors import Actor
from luxmail.logging import redact

logger = logging.getLogger(__name__)

_VERP = re.compile(r"bounces\+([a-z2-7]{29})@", re.IGNORECASE)
MAX_REPORT_BYTES = MAX_BYTES
# Unread mail kept at most (pending); beyond, new ones are only counted (audited), so a
# flood of junk to the bounce address cannot fill the database.
MAX_UNPARSED_PENDING = 10_000
SYNC_SOURCE = "smtp-dialogue"
REPROCESS_SOURCE = "reprocess"


class BounceError(Exception):
    """The bytes are not an e-mail message LuxMail can keep (not mail, or oversize)."""


def _parse(raw: bytes) -> Feedback:
    try:
        return parse(raw)
    except FeedbackError as error:
        raise BounceError(str(error)) from None


def recipient_hash(address: str) -> str:
    """A keyed hash of the address (hex, 32 chars): groups bounces without the address."""
    return crypto.blind_index("bounce_recipient", address)[:16].hex()


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()[:253] if "@" in address else ""


def _provider(feedback: Feedback, finding: Finding | None) -> str:
    """The receiving provider: the refusing host's domain (its last two labels) when the
    report names it, else the parser's (for a DSN that is who reported it, possibly our
    own relay; for a complaint the mailbox provider), else the recipient's domain."""
    if finding is not None and finding.remote_mta:
        labels = finding.remote_mta.strip(" .[]").lower().split(".")
        if len(labels) >= 2 and not labels[-1].isdigit():
            return ".".join(labels[-2:])[:253]
    if feedback.provider:
        return feedback.provider.lower()[:253]
    return _domain(finding.recipient) if finding is not None else ""


def _message_for(tokens_found: Iterable[str]) -> Message | None:
    for token in tokens_found:
        try:
            message_id = tokens.read(tokens.BOUNCE, token.lower())
        except tokens.InvalidToken:
            continue
        message = (
            Message.objects.filter(pk=message_id)
            .select_related("contact", "campaign", "campaign__sender")
            .first()
        )
        if message is not None:
            return message
    return None


@dataclass
class Outcome:
    events: int = 0
    suppressed: int = 0
    unmatched: int = 0
    unparsed: int = 0
    sender_events: int = 0
    ignored: int = 0
    kind: str = ""


def bounce_process(
    *,
    raw: bytes,
    source: str,
    envelope_recipients: Iterable[str] = (),
    actor: Actor = None,
    request: HttpRequest | None = None,
    keep_unparsed: bool = True,
) -> Outcome:
    """Apply what one mail sent back reports. Raises :class:`BounceError` only for bytes
    that are not mail (or over 2 MB); mail that yields nothing is kept encrypted
    (``keep_unparsed``) and counted. Audits ``bounce.record`` per event (ids, reason).
    """
    feedback = _parse(raw)
    envelope_tokens = [t.lower() for r in envelope_recipients for t in _VERP.findall(r)]
    outcome = Outcome(kind=feedback.kind)
    if feedback.kind is FeedbackKind.UNRECOGNIZED:
        outcome.unparsed = 1
        if keep_unparsed:
            unparsed_store(raw=raw, source=source, envelope_tokens=envelope_tokens)
        return outcome
    if feedback.kind in (FeedbackKind.AUTO_REPLY, FeedbackKind.DELIVERED):
        outcome.ignored = 1
        return outcome
    if feedback.kind is FeedbackKind.COMPLAINT and feedback.feedback_type == "not-spam":
        outcome.ignored = 1
        return outcome
    message = _message_for([*envelope_tokens, *feedback.header_tokens])
    if feedback.kind in (FeedbackKind.AUTH_FAILURE_REPORT, FeedbackKind.DMARC_REPORT):
        _sender_report(feedback, message, source=source)
        outcome.sender_events = 1
        return outcome
    if message is None:
        outcome.unmatched = len(feedback.findings) or 1
        audit.record(
            "bounce.unmatched",
            actor=actor or f"bounces:{source}",
            request=request,
            details={"kind": feedback.kind, "source": source, "format": feedback.format},
        )
        return outcome
    if feedback.kind is FeedbackKind.COMPLAINT:
        suppressed = _complaint(message, feedback, source=source, actor=actor, request=request)
        outcome.events, outcome.suppressed = 1, int(suppressed)
    else:
        finding = _finding_for(message, feedback.findings)
        if finding is not None:
            suppressed = _record(
                message,
                finding,
                provider=_provider(feedback, finding),
                feedback_format=feedback.format,
                source=source,
                actor=actor,
                request=request,
            )
            outcome.events, outcome.suppressed = 1, int(suppressed)
    if outcome.events and message.campaign_id:
        health.campaign_check(campaign_id=message.campaign_id)
    return outcome


def _finding_for(message: Message, findings: tuple[Finding, ...]) -> Finding | None:
    """The finding about this message's recipient (VERP: one recipient per message).

    Prefers the group naming the contact's address, then failures over delays.
    """
    if not findings:
        return None
    ranked = sorted(findings, key=lambda f: f.action != "failed")
    contact = message.contact
    if contact is not None:
        wanted = bytes(contact.email_bidx)
        for finding in ranked:
            if finding.recipient and upsert.email_bidx(finding.recipient) == wanted:
                return finding
    return ranked[0]


def sync_state(*, code: int | None, reply: str) -> str | None:
    """The state of a message refused with ``code``/``reply`` during the SMTP dialogue:
    ``bounced`` when the reason is the recipient's address for good, ``failed`` for any
    other 5xx, ``None`` when it is not a permanent refusal. Same classifier as a DSN.
    """
    if code is None or not 500 <= code < 600:
        return None
    verdict = classify(status=enhanced_status(reply) or "5.0.0", reply=reply)
    if verdict is not None and verdict.scope is Scope.RECIPIENT_PERMANENT:
        return MessageState.BOUNCED
    return MessageState.FAILED


def refusal_record(*, message_id: int, code: int, reply: str) -> bool:
    """Record a 5xx received at RCPT or DATA like the same refusal arriving as a DSN
    (same classifier, same policy). The message's state is written by the send pipeline
    (:func:`sync_state`). Returns whether the address was suppressed.
    """
    message = (
        Message.objects.filter(pk=message_id)
        .select_related("contact", "campaign", "campaign__sender")
        .first()
    )
    if message is None:
        return False
    status = enhanced_status(reply) or f"{code // 100}.0.0"
    verdict = classify(status=status, reply=reply)
    if verdict is None:
        return False
    finding = Finding("", "failed", status[:16], reply, verdict)
    suppressed = _record(
        message,
        finding,
        provider="",
        feedback_format="smtp",
        source=SYNC_SOURCE,
        actor=None,
        request=None,
        set_state=False,
    )
    if message.campaign_id:
        health.campaign_check(campaign_id=message.campaign_id)
    return suppressed


def _sender_of(message: Message | None) -> tuple[Any, str]:
    sender = message.campaign.sender if message is not None and message.campaign_id else None
    return sender, _domain(sender.from_email) if sender is not None else ""


def _record(
    message: Message,
    finding: Finding,
    *,
    provider: str,
    feedback_format: str,
    source: str,
    actor: Actor,
    request: HttpRequest | None,
    set_state: bool = True,
) -> bool:
    verdict: Classification = finding.classification
    contact = message.contact
    label = actor or f"bounces:{source}"
    sender, sending_domain = _sender_of(message)
    permanent = finding.action == "failed" or finding.status.startswith("5")
    # A delay warning (the MTA keeps trying) is evidence, not a bounce that counts: it
    # keeps its reason but is stored as transient, so it never suppresses or counts.
    scope = verdict.scope if permanent else Scope.TRANSIENT
    diagnostic = redact(" ".join(finding.reply.split()))[:480]
    with transaction.atomic():
        event = BounceEvent.objects.create(
            message=message,
            contact=contact,
            campaign_id=message.campaign_id,
            sender=sender,
            sending_domain=sending_domain,
            kind=BounceKind.HARD if verdict.hard else BounceKind.SOFT,
            status=finding.status[:16],
            reason=verdict.reason,
            scope=scope,
            rule=verdict.rule[:120],
            provider=provider,
            feedback_format=feedback_format[:32],
            recipient_domain=_domain(finding.recipient),
            recipient_hash=recipient_hash(finding.recipient) if finding.recipient else "",
            diagnostic=diagnostic,
            source=source,
        )
        suppress = contact is not None and policy.should_suppress(
            reason=verdict.reason, scope=scope, contact_id=contact.pk
        )
        if verdict.scope is Scope.SENDER:
            SenderEvent.objects.create(
                kind=SenderEventKind.BLOCK,
                sender=sender,
                sending_domain=sending_domain,
                campaign_id=message.campaign_id,
                provider=provider,
                reason=verdict.reason,
                status=finding.status[:16],
                rule=verdict.rule[:120],
                detail=diagnostic,
                source=source,
            )
        state = None
        if permanent and (suppress or verdict.scope is Scope.RECIPIENT_PERMANENT):
            state = MessageState.BOUNCED
        elif permanent:
            state = MessageState.FAILED
        if (
            set_state
            and state is not None
            and message.state in (MessageState.SENT, MessageState.UNKNOWN, MessageState.DEFERRED)
        ):
            Message.objects.filter(pk=message.pk).update(state=state, smtp_reply=diagnostic)
        if suppress and contact is not None:
            contact_services.suppression_add(
                reason="hard_bounce",
                contact=contact,
                actor=label,
                note=f"bounce: {verdict.reason} {finding.status}".strip()[:500],
                request=request,
            )
            BounceEvent.objects.filter(pk=event.pk).update(suppressed=True)
        audit.record(
            "bounce.record",
            actor=label,
            request=request,
            target=message.campaign,
            details={
                "message_id": message.pk,
                "kind": event.kind,
                "status": event.status,
                "reason": verdict.reason,
                "scope": verdict.scope,
                "rule": verdict.rule[:120],
                "source": source,
                "suppressed": suppress,
            },
        )
    return suppress


def _complaint(
    message: Message,
    feedback: Feedback,
    *,
    source: str,
    actor: Actor,
    request: HttpRequest | None,
) -> bool:
    """An ARF complaint: suppressed for marketing (status ``complained``), audited."""
    contact = message.contact
    label = actor or f"bounces:{source}"
    sender, sending_domain = _sender_of(message)
    with transaction.atomic():
        event = BounceEvent.objects.create(
            message=message,
            contact=contact,
            campaign_id=message.campaign_id,
            sender=sender,
            sending_domain=sending_domain,
            kind=BounceKind.COMPLAINT,
            reason="complaint",
            scope="recipient",
            rule=f"arf:{feedback.feedback_type or 'abuse'}"[:120],
            provider=_provider(feedback, None),
            feedback_format=feedback.format[:32],
            diagnostic=f"feedback-type: {feedback.feedback_type or 'abuse'}"[:480],
            source=source,
        )
        if contact is not None:
            contact_services.suppression_add(
                reason="complaint",
                contact=contact,
                actor=label,
                note=f"complaint ({feedback.feedback_type or 'abuse'})",
                request=request,
            )
            BounceEvent.objects.filter(pk=event.pk).update(suppressed=True)
        audit.record(
            "bounce.complaint",
            actor=label,
            request=request,
            target=message.campaign,
            details={
                "message_id": message.pk,
                "feedback_type": feedback.feedback_type,
                "source": source,
                "suppressed": contact is not None,
            },
        )
    return contact is not None


def _sender_report(feedback: Feedback, message: Message | None, *, source: str) -> None:
    """RFC 6591 auth-failure and DMARC aggregate reports: evidence, never complaints."""
    sender, sending_domain = _sender_of(message)
    kind = (
        SenderEventKind.AUTH_FAILURE_REPORT
        if feedback.kind is FeedbackKind.AUTH_FAILURE_REPORT
        else SenderEventKind.DMARC_REPORT
    )
    event = SenderEvent.objects.create(
        kind=kind,
        sender=sender,
        sending_domain=sending_domain,
        campaign_id=message.campaign_id if message is not None else None,
        provider=_provider(feedback, None),
        reason="auth_failure" if kind == SenderEventKind.AUTH_FAILURE_REPORT else "",
        rule=f"{feedback.format}:{feedback.feedback_type}"[:120],
        detail=f"{feedback.format} {feedback.feedback_type}".strip()[:480],
        source=source,
    )
    audit.record(
        "bounce.sender_report",
        actor=f"bounces:{source}",
        target=event,
        details={"kind": kind, "message_id": message.pk if message is not None else None},
    )


# --- mail LuxMail could not read ---------------------------------------------------------


def unparsed_store(
    *, raw: bytes, source: str, envelope_tokens: list[str]
) -> UnparsedFeedback | None:
    """Keep an unreadable mail encrypted, counted once per distinct body; ``None`` when
    :data:`MAX_UNPARSED_PENDING` are already waiting (the mail is then only counted)."""
    # Keyed, so the digest of a short mail cannot be confirmed by guessing its text.
    digest = crypto.blind_index("unparsed_feedback", raw.decode("latin-1")).hex()
    with transaction.atomic():
        existing = UnparsedFeedback.objects.select_for_update().filter(digest=digest).first()
        if existing is not None:
            UnparsedFeedback.objects.filter(pk=existing.pk).update(
                received_count=F("received_count") + 1, last_received_at=timezone.now()
            )
            return existing
        pending = UnparsedFeedback.objects.filter(state=UnparsedState.PENDING)
        if pending.count() >= MAX_UNPARSED_PENDING:
            audit.record(
                "bounce.unparsed_dropped", actor=f"bounces:{source}", details={"size": len(raw)}
            )
            return None
        item = UnparsedFeedback(
            digest=digest,
            size=len(raw),
            source=source[:16],
            envelope_tokens=envelope_tokens[:4],
        )
        crypto.seal(item, "body", raw)
        item.save()
        audit.record(
            "bounce.unparsed", actor=f"bounces:{source}", target=item, details={"size": len(raw)}
        )
    return item
