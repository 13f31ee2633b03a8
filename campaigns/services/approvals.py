"""PHI approval (issue 17): a PHI campaign is sent only after a Compliance Officer,
who is not its author, has approved exactly what it reads and whom it reaches.

A campaign *needs approval* when its template reads PHI (``phi.*``) or a segment of its
audience (included or excluded) filters on a PHI condition. The officer approves a
snapshot — the PHI fields the template reads and the audience uses, the channel policy
and the recipient count (minimum necessary) — and the SHA-256 of the inputs that decide
what is sent: the template's subject, HTML and text, the sender identity, the
audience's segments (with their rules) and lists, and the channel policy.

:func:`approval_require` runs when a campaign is scheduled and again when it starts;
an approval whose inputs changed since is withdrawn there at the latest, and edits
withdraw it at once (:func:`approvals_recheck`, called by the campaign and template
services and on segment and sender saves); a scheduled campaign whose approval is
withdrawn goes back to draft. Requests, decisions and withdrawals are
audited (ids, field names and counts; never PHI values).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save
from django.http import HttpRequest
from django.utils import timezone

from campaigns.content import fields as template_fields
from campaigns.models import (
    ApprovalState,
    Campaign,
    CampaignApproval,
    CampaignStatus,
    EmailTemplate,
    SenderIdentity,
)
from campaigns.selectors import audience_summary
from campaigns.services.errors import CampaignError, _user
from contacts import segments as segment_rules
from contacts.models import Segment
from luxmail import audit, roles
from luxmail.actors import Actor

APPROVE_PERMISSION = "campaigns.approve_phi_campaign"
_OPEN = (ApprovalState.PENDING, ApprovalState.APPROVED)


class ApprovalRequired(CampaignError):
    """The campaign uses PHI and has no current approval (API: 409 Conflict)."""


class ApprovalForbidden(CampaignError):
    """The actor may not decide this approval (API: 403 Forbidden)."""


@dataclass(frozen=True)
class PhiUse:
    """What a campaign reads and whom it reaches, as the approval screen shows it."""

    template_fields: list[str]
    audience_fields: list[str]
    template_phi: bool

    @property
    def needs_approval(self) -> bool:
        return self.template_phi or bool(self.audience_fields)


def _template_phi_fields(template: EmailTemplate | None) -> tuple[list[str], bool]:
    if template is None:
        return [], False
    keys = template_fields.referenced_fields(
        subject=template.subject, html=template.html, text=template.text
    )
    labels = [f"{base}.{name}" for base, name in keys if base == "phi"]
    if template.phi_bearing and not labels:
        # ``phi`` used whole (a loop or a filter over it): every PHI field is in reach.
        labels = ["phi (all fields)"]
    return labels, template.phi_bearing


def _audience_segments(campaign: Campaign) -> list[Segment]:
    ids = {s.pk for s in campaign.segments.all()} | {s.pk for s in campaign.exclude_segments.all()}
    return list(Segment.objects.filter(pk__in=ids).order_by("pk"))


def _audience_phi_fields(segments: list[Segment]) -> list[str]:
    found: set[str] = set()
    for segment in segments:
        for condition in segment_rules.conditions(segment.rules):
            name = str(condition.get("field", ""))
            kind = segment_rules.kind_for(name)
            # An unknown field is treated as PHI: the approval errs on the careful side.
            if kind is None or kind.phi:
                found.add(kind.label if kind is not None else name)
    return sorted(found)


def phi_use(campaign: Campaign) -> PhiUse:
    labels, template_phi = _template_phi_fields(campaign.template)
    return PhiUse(
        template_fields=labels,
        audience_fields=_audience_phi_fields(_audience_segments(campaign)),
        template_phi=template_phi,
    )


def inputs_hash(campaign: Campaign) -> str:
    """SHA-256 over the canonical JSON of everything an approval covers."""
    template = campaign.template
    sender = campaign.sender
    body = {
        "template": None
        if template is None
        else {
            "id": template.pk,
            "subject": template.subject,
            "html": template.html,
            "text": template.text,
        },
        "sender": None
        if sender is None
        else {
            "id": sender.pk,
            "from_email": sender.from_email,
            "from_name": sender.from_name,
            "reply_to": sender.reply_to,
        },
        "segments": [[s.pk, s.rules] for s in campaign.segments.order_by("pk")],
        "exclude_segments": [[s.pk, s.rules] for s in campaign.exclude_segments.order_by("pk")],
        "lists": sorted(campaign.lists.values_list("pk", flat=True)),
        "exclude_lists": sorted(campaign.exclude_lists.values_list("pk", flat=True)),
        "secure_policy": campaign.secure_policy,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def current_approval(campaign: Campaign) -> CampaignApproval | None:
    """The newest approval row of ``campaign`` (any state), or None."""
    return campaign.approvals.select_related("requested_by", "decided_by").first()


def is_compliance_officer(actor: Actor) -> bool:
    """An active user in the Compliance Officer role (superuser status is not enough)."""
    if not isinstance(actor, get_user_model()) or not actor.is_active:
        return False
    return roles.COMPLIANCE_OFFICER in roles.role_names(actor) and actor.has_perm(
        APPROVE_PERMISSION
    )


def _recipient_count(campaign: Campaign, template_phi: bool) -> int:
    return int(audience_summary(campaign=campaign, phi=template_phi)["eligible"])


def approval_request(
    *, campaign: Campaign, actor: Actor, request: HttpRequest | None = None
) -> CampaignApproval:
    """Ask for approval of the campaign as it is now; an open request is replaced.

    Raises :class:`CampaignError` when the campaign needs none or has already started.
    Audits ``campaign.approval_request`` (field names and the count, no PHI).
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise CampaignError("Only a draft or scheduled campaign can be submitted for approval.")
        use = phi_use(campaign)
        if not use.needs_approval:
            raise CampaignError(
                "This campaign uses no PHI fields in its template or audience; "
                "it needs no approval."
            )
        _withdraw_open(
            campaign, reason="a new approval was requested", actor=actor, request=request
        )
        approval = CampaignApproval.objects.create(
            campaign=campaign,
            inputs_hash=inputs_hash(campaign),
            template_phi_fields=use.template_fields,
            audience_phi_fields=use.audience_fields,
            secure_policy=campaign.secure_policy,
            recipients=_recipient_count(campaign, use.template_phi),
            requested_by=_user(actor),
        )
        audit.record(
            "campaign.approval_request",
            actor=actor,
            request=request,
            target=campaign,
            details=_snapshot(approval),
        )
    return approval


def _snapshot(approval: CampaignApproval) -> dict[str, Any]:
    return {
        "approval_id": approval.pk,
        "template_phi_fields": approval.template_phi_fields,
        "audience_phi_fields": approval.audience_phi_fields,
        "policy": approval.secure_policy,
        "recipients": approval.recipients,
        "inputs_hash": approval.inputs_hash,
    }


def approval_decide(
    *,
    campaign: Campaign,
    actor: Actor,
    approve: bool,
    note: str = "",
    request: HttpRequest | None = None,
) -> CampaignApproval:
    """Approve or reject the campaign's pending request.

    Only a Compliance Officer who neither wrote the campaign nor requested the approval
    may decide (:class:`ApprovalForbidden`). A request whose inputs changed since it was
    made is withdrawn instead (:class:`ApprovalRequired`). Audits ``campaign.approve``
    or ``campaign.approval_reject``.
    """
    if not is_compliance_officer(actor):
        raise ApprovalForbidden("Only a Compliance Officer can approve or reject a PHI campaign.")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        approval = current_approval(campaign)
        if approval is None or approval.state != ApprovalState.PENDING:
            raise CampaignError("This campaign has no request awaiting approval.")
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise CampaignError("Only a draft or scheduled campaign can be approved.")
        user = _user(actor)
        if user is not None and user.pk in (campaign.created_by_id, approval.requested_by_id):
            raise ApprovalForbidden(
                "You wrote this campaign or asked for its approval; another Compliance "
                "Officer must decide."
            )
        stale = approval.inputs_hash != inputs_hash(campaign)
        if not stale:
            approval.state = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
            approval.decided_by = user
            approval.decided_at = timezone.now()
            approval.note = " ".join(note.split())[:500]
            approval.save()
            audit.record(
                "campaign.approve" if approve else "campaign.approval_reject",
                actor=actor,
                request=request,
                target=campaign,
                details={**_snapshot(approval), "note_given": bool(approval.note)},
            )
            return approval
    approvals_recheck(campaign=campaign, actor=actor, request=request)
    raise ApprovalRequired(
        "The campaign changed after approval was requested; the request was withdrawn. "
        "Ask for approval again."
    )


def _withdraw(
    approval: CampaignApproval, *, reason: str, actor: Actor, request: HttpRequest | None
) -> None:
    approval.state = ApprovalState.WITHDRAWN
    approval.withdrawn_at = timezone.now()
    approval.withdrawn_reason = reason[:200]
    approval.save(update_fields=["state", "withdrawn_at", "withdrawn_reason"])
    # A scheduled campaign goes back to draft at once, rather than failing at its time.
    unscheduled = bool(
        Campaign.objects.filter(pk=approval.campaign_id, status=CampaignStatus.SCHEDULED).update(
            status=CampaignStatus.DRAFT
        )
    )
    audit.record(
        "campaign.approval_withdraw",
        actor=actor,
        request=request,
        target=approval.campaign,
        details={
            "approval_id": approval.pk,
            "reason": approval.withdrawn_reason,
            "unscheduled": unscheduled,
        },
    )


def _withdraw_open(
    campaign: Campaign, *, reason: str, actor: Actor, request: HttpRequest | None
) -> None:
    for approval in campaign.approvals.filter(state__in=_OPEN):
        _withdraw(approval, reason=reason, actor=actor, request=request)


def approvals_recheck(
    *, campaign: Campaign, actor: Actor = None, request: HttpRequest | None = None
) -> bool:
    """Withdraw the campaign's open approval if what it covers changed. Returns True
    when one was withdrawn. Cheap when the campaign has no open approval."""
    approval = campaign.approvals.filter(state__in=_OPEN).first()
    if approval is None:
        return False
    campaign = Campaign.objects.select_related("template", "sender").get(pk=campaign.pk)
    if approval.inputs_hash == inputs_hash(campaign):
        return False
    with transaction.atomic():
        _withdraw(
            approval,
            reason="the template, audience, sender or channel policy changed",
            actor=actor,
            request=request,
        )
    return True


def approvals_recheck_using(
    *,
    template: EmailTemplate | None = None,
    segment: Segment | None = None,
    sender_id: int | None = None,
    actor: Actor = None,
) -> int:
    """:func:`approvals_recheck` for every campaign with an open approval that uses
    ``template``, ``segment`` or the sender. Returns how many were withdrawn."""
    campaigns = Campaign.objects.filter(approvals__state__in=_OPEN).distinct()
    if template is not None:
        campaigns = campaigns.filter(template=template)
    if segment is not None:
        ids = set(campaigns.filter(segments=segment).values_list("pk", flat=True))
        ids |= set(campaigns.filter(exclude_segments=segment).values_list("pk", flat=True))
        campaigns = Campaign.objects.filter(pk__in=ids)
    if sender_id is not None:
        campaigns = campaigns.filter(sender_id=sender_id)
    return sum(approvals_recheck(campaign=c, actor=actor) for c in campaigns)


def approval_require(campaign: Campaign) -> None:
    """Raise :class:`ApprovalRequired` unless the campaign needs no approval or has an
    approval whose inputs are unchanged. Called by schedule and start under the
    campaign's row lock; the caller's earlier :func:`approvals_recheck` has already
    withdrawn (and audited) a stale approval."""
    use = phi_use(campaign)
    if not use.needs_approval:
        return
    approval = campaign.approvals.first()
    if approval is None or approval.state in (ApprovalState.WITHDRAWN, ApprovalState.REJECTED):
        raise ApprovalRequired(
            "This campaign uses PHI fields, so a Compliance Officer must approve it before "
            "it is scheduled or sent. Request approval on its review page."
        )
    if approval.state == ApprovalState.PENDING:
        raise ApprovalRequired(
            "This campaign is awaiting approval by a Compliance Officer; it can be "
            "scheduled once approved."
        )
    if approval.inputs_hash != inputs_hash(campaign):
        raise ApprovalRequired(
            "The template, audience, sender or channel policy changed after approval, so "
            "the approval no longer holds. Request approval again."
        )


@dataclass(frozen=True)
class ApprovalOverview:
    """What the approval screen shows: the campaign's PHI use now, the live recipient
    count, the newest approval and whether it still covers the campaign as it is."""

    use: PhiUse
    recipients: int
    approval: CampaignApproval | None
    current: bool
    history: list[CampaignApproval]

    @property
    def approved(self) -> bool:
        return self.approval is not None and self.approval.state == ApprovalState.APPROVED


def approval_overview(campaign: Campaign) -> ApprovalOverview:
    """Read-only: nothing is withdrawn or audited here (reading PHI field *names* and
    counting recipients touches no PHI value)."""
    use = phi_use(campaign)
    approval = current_approval(campaign)
    history = list(campaign.approvals.select_related("requested_by", "decided_by")[:20])
    return ApprovalOverview(
        use=use,
        recipients=_recipient_count(campaign, use.template_phi),
        approval=approval,
        current=approval is not None and approval.inputs_hash == inputs_hash(campaign),
        history=history,
    )


def approval_status(campaign: Campaign) -> dict[str, Any]:
    """For the review page: whether approval is needed, the newest approval and
    whether it still covers the campaign (no recipient count: the page has one)."""
    use = phi_use(campaign)
    approval = current_approval(campaign)
    current = approval is not None and approval.inputs_hash == inputs_hash(campaign)
    return {
        "needed": use.needs_approval,
        "approval": approval,
        "current": current,
        "ok": not use.needs_approval
        or (current and approval is not None and approval.state == ApprovalState.APPROVED),
    }


# --- edits outside the campaign services ----------------------------------------------------


_SEGMENT_BOOKKEEPING = {"last_count", "last_counted_at", "updated_at"}


def _segment_saved(sender: Any, instance: Segment, created: bool, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if created or (update_fields and set(update_fields) <= _SEGMENT_BOOKKEEPING):
        return  # a new segment has no campaign yet; a recount changes no rule
    approvals_recheck_using(segment=instance)


def _sender_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created:
        approvals_recheck_using(sender_id=instance.pk)


def connect() -> None:
    """Withdraw approvals when a segment or sender identity they cover is saved (the
    contacts app cannot call up into campaigns; ``CampaignsConfig.ready`` connects)."""
    post_save.connect(_segment_saved, sender=Segment, dispatch_uid="campaigns.approvals.segment")
    post_save.connect(
        _sender_saved, sender=SenderIdentity, dispatch_uid="campaigns.approvals.sender"
    )
