"""Reads of the campaigns app: audiences, progress, DNS records, lists for the UI/API."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaigns.content import fields
from campaigns.content.context import recipients
from campaigns.models import (
    Campaign,
    Message,
    MessageState,
    SenderIdentity,
)
from campaigns.senders import signing
from contacts import segments as contact_segments
from contacts import selectors as contact_selectors
from contacts.models import (
    Contact,
    ContactList,
    ContactStatus,
    ListMembership,
    Segment,
    Suppression,
)
from luxmail import crypto, roles
from luxmail.actors import Actor

logger = logging.getLogger(__name__)


def _union(segment_rules: list[Any], list_ids: list[int], today: dt.date) -> Q | None:
    parts: list[Q] = []
    for rules in segment_rules:
        parts.append(Q(pk__in=contact_segments.matching(rules, today=today).values("pk")))
    if list_ids:
        parts.append(
            Q(
                Exists(
                    ListMembership.objects.filter(
                        contact_id=OuterRef("pk"), contact_list_id__in=list_ids
                    )
                )
            )
        )
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined |= part
    return combined


def _audience_base(
    *,
    segments: list[Segment],
    lists: list[ContactList],
    exclude_segments: list[Segment],
    exclude_lists: list[ContactList],
    today: dt.date | None = None,
) -> QuerySet[Contact]:
    """Segments or lists, minus exclusions (before suppression and consent)."""
    today = today or timezone.localdate()
    include = _union([s.rules for s in segments], [c.pk for c in lists], today)
    if include is None:
        return Contact.objects.none()
    queryset = Contact.objects.filter(include)
    exclude = _union([s.rules for s in exclude_segments], [c.pk for c in exclude_lists], today)
    if exclude is not None:
        queryset = queryset.exclude(exclude)
    return queryset.order_by()


def _eligible(
    *,
    segments: list[Segment],
    lists: list[ContactList],
    exclude_segments: list[Segment],
    exclude_lists: list[ContactList],
    phi: bool,
) -> QuerySet[Contact]:

    return contact_selectors.send_audience(
        purpose=contact_selectors.consent_purpose_for(phi_template=phi),
        segments_in=segments,
        lists_in=lists,
        exclude_segments=exclude_segments,
        exclude_lists=exclude_lists,
    )


def _campaign_sets(campaign: Campaign) -> dict[str, Any]:
    return {
        "segments": list(campaign.segments.all()),
        "lists": list(campaign.lists.all()),
        "exclude_segments": list(campaign.exclude_segments.all()),
        "exclude_lists": list(campaign.exclude_lists.all()),
    }


def audience_queryset(*, campaign: Campaign, phi: bool) -> QuerySet[Contact]:
    """The eligible recipients (contacts' ``send_audience``): audience minus exclusions,
    suppressed and inactive contacts, and contacts without consent (``phi_marketing``
    for PHI-bearing templates, ``marketing`` otherwise)."""
    return _eligible(**_campaign_sets(campaign), phi=phi)


def audience_counts_for(
    *,
    segments: list[Segment],
    lists: list[ContactList],
    exclude_segments: list[Segment],
    exclude_lists: list[ContactList],
    phi: bool,
) -> dict[str, int]:
    """Counts for the wizard (no PHI): who will get it and who is skipped, and why."""
    sets: dict[str, Any] = {
        "segments": segments,
        "lists": lists,
        "exclude_segments": exclude_segments,
        "exclude_lists": exclude_lists,
    }
    base = _audience_base(**sets)
    total = base.count()
    active = base.filter(status=ContactStatus.ACTIVE)
    suppressed = active.filter(
        Exists(
            Suppression.objects.filter(email_bidx=OuterRef("email_bidx"), removed_at__isnull=True)
        )
    ).count()
    eligible = _eligible(**sets, phi=phi).count()
    inactive = total - active.count()
    return {
        "total": total,
        "eligible": eligible,
        "inactive": inactive,
        "suppressed": suppressed,
        "missing_consent": max(total - inactive - suppressed - eligible, 0),
    }


def audience_summary(*, campaign: Campaign, phi: bool | None = None) -> dict[str, int]:
    if phi is None:
        phi = bool(campaign.template and campaign.template.phi_bearing)
    return audience_counts_for(**_campaign_sets(campaign), phi=phi)


def user_is_admin(actor: Actor) -> bool:
    """An active staff user in the Admin role (API keys and the system never are)."""

    if not isinstance(actor, get_user_model()) or not actor.is_active:
        return False
    return bool(actor.is_superuser) or roles.ADMIN in roles.role_names(actor)


def campaign_warnings(*, campaign: Campaign) -> list[str]:
    """Plain-language warnings shown before sending."""
    warnings: list[str] = []
    template = campaign.template
    phi = bool(template and template.phi_bearing)
    summary = audience_summary(campaign=campaign, phi=phi)
    if template is None:
        warnings.append("No template is chosen.")
    if campaign.sender is None:
        warnings.append("No sender identity is chosen.")
    elif not campaign.sender.has_dkim:
        warnings.append(
            "The sender identity has no DKIM key"
            + (
                " (an Admin allowed this)."
                if campaign.sender.allow_without_dkim
                else "; sending is refused."
            )
        )
    if summary["missing_consent"]:
        kind = "PHI-marketing" if phi else "marketing"
        prefix = "PHI template, " if phi else ""
        warnings.append(
            f"{prefix}{summary['missing_consent']:,} recipients lack {kind} consent and will be "
            "skipped."
        )
    if summary["suppressed"]:
        warnings.append(f"{summary['suppressed']:,} recipients are suppressed and will be skipped.")
    if summary["inactive"]:
        warnings.append(
            f"{summary['inactive']:,} recipients have unsubscribed, bounced or complained and "
            "will be skipped."
        )
    if summary["eligible"] == 0:
        warnings.append("Nobody in this audience can receive this campaign.")
    if phi and template is not None:
        warnings.append(
            "This template uses PHI fields: it is delivered only over the secure channels its "
            f"policy allows ({campaign.get_secure_policy_display()})."
        )
    return warnings


def campaign_counts(campaign: Campaign) -> dict[str, int]:
    """Messages per state (every state present, zeros included)."""
    rows = (
        Message.objects.filter(campaign=campaign)
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    counts = {state: 0 for state in MessageState.values}
    counts.update({state: n for state, n in rows})
    return counts


def _summary(counts: dict[str, int]) -> dict[str, Any]:
    remaining = counts["queued"] + counts["sending"] + counts["deferred"]
    total = sum(counts.values())
    return {
        "counts": counts,
        "total": total,
        "sent": counts["sent"],
        "failed": counts["failed"] + counts["bounced"],
        "unknown": counts["unknown"],
        "skipped": counts["skipped"] + counts["cancelled"],
        "remaining": remaining,
        "percent": round(100 * (total - remaining) / total) if total else 100,
    }


def campaigns_listed(*, limit: int = 100) -> list[tuple[Campaign, dict[str, Any]]]:
    """The newest marketing campaigns with their message counts per state.

    Journey step campaigns and transactional messages are hidden campaigns of the one
    pipeline (see docs/architecture.md); they have their own pages. Counts come from one
    grouped query for the whole page, not one per campaign.
    """
    campaigns = list(
        Campaign.objects.filter(transactional=False, journey_step__isnull=True)
        .select_related("template", "sender")
        .order_by("-created_at")[:limit]
    )
    counts: dict[int, dict[str, int]] = {
        c.pk: {state: 0 for state in MessageState.values} for c in campaigns
    }
    rows = (
        Message.objects.filter(campaign__in=campaigns)
        .values_list("campaign_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for campaign_id, state, n in rows:
        counts[campaign_id][state] = n
    return [(c, _summary(counts[c.pk])) for c in campaigns]


def campaign_progress(campaign: Campaign) -> dict[str, Any]:
    """Live progress: sent / failed / remaining and the rate over the last minute."""
    summary = _summary(campaign_counts(campaign))
    now = timezone.now()
    recent = Message.objects.filter(
        campaign=campaign,
        state=MessageState.SENT,
        finished_at__gte=now - dt.timedelta(seconds=60),
    ).count()
    return {**summary, "rate_per_minute": recent, "status": campaign.status}


def dkim_dns_record(sender: SenderIdentity) -> dict[str, str] | None:
    """The TXT record to publish for the identity's DKIM key (None without a key)."""
    if not sender.dkim_public_key:
        return None
    return {
        "name": signing.dns_record_name(sender.dkim_selector, sender.dkim_domain),
        "type": "TXT",
        "value": signing.dns_record_value(sender.dkim_algorithm, sender.dkim_public_key),
    }


def unknown_messages(campaign: Campaign) -> QuerySet[Message]:
    return Message.objects.filter(campaign=campaign, state=MessageState.UNKNOWN).order_by("id")


MISSING_FIELDS_SCAN_LIMIT = 5000


def missing_field_counts(
    *, campaign: Campaign, actor: Actor, request: Any = None, limit: int = MISSING_FIELDS_SCAN_LIMIT
) -> dict[str, Any] | None:
    """Before sending: how many eligible recipients lack each field the template reads.

    Only counts leave this function, never values. The fields are decrypted through
    ``crypto.phi_access`` (one audited ``phi.access``, purpose ``campaign.review``) in
    batches, for at most ``limit`` recipients (the page says when it scanned fewer
    than all). ``required`` fields make the recipient skipped; guarded ones render the
    template's default. None when there is no template or it reads no contact field.
    """

    template = campaign.template
    if template is None:
        return None
    sources = {"subject": template.subject, "html": template.html, "text": template.text}
    referenced = [key for key in fields.referenced_fields(**sources) if key != ("contact", "email")]
    if not referenced:
        return None
    required = set(fields.required_fields(**sources))
    phi = template.phi_bearing
    ids = list(
        audience_queryset(campaign=campaign, phi=phi)
        .order_by("id")
        .values_list("id", flat=True)[: limit + 1]
    )
    truncated = len(ids) > limit
    ids = ids[:limit]
    counts = {f"{base}.{name}": 0 for base, name in referenced}
    skipped = 0
    if ids:
        access = crypto.phi_access(
            actor=actor,
            purpose="campaign.review",
            target=campaign,
            request=request,
            details={"recipients": len(ids), "counts_only": True},
        )
        for start in range(0, len(ids), 500):
            people = recipients(ids[start : start + 500], fields=referenced, access=access)
            for person in people.values():
                blank = fields.missing(person.context, referenced)
                for label in blank:
                    counts[label] += 1
                if any(tuple(label.split(".", 1)) in required for label in blank):
                    skipped += 1
    rows = [
        {
            "field": f"{base}.{name}",
            "missing": counts[f"{base}.{name}"],
            "required": (base, name) in required,
        }
        for base, name in referenced
    ]
    return {"rows": rows, "scanned": len(ids), "truncated": truncated, "skipped": skipped}


def skipped_messages(campaign: Campaign, *, limit: int = 200) -> list[Message]:
    """Skipped messages with their reason (field names or suppression, never values)."""
    return list(
        Message.objects.filter(campaign=campaign, state=MessageState.SKIPPED)
        .only("id", "contact_id", "smtp_reply", "finished_at")
        .order_by("id")[:limit]
    )


def latest_messages(campaign: Campaign, *, limit: int = 50) -> list[Message]:
    """The campaign's most recently finished messages with their delivery proof (the
    campaign page links each to its message page)."""
    return list(
        Message.objects.filter(campaign=campaign, finished_at__isnull=False)
        .select_related("delivery_proof")
        .order_by("-finished_at", "-id")[:limit]
    )
