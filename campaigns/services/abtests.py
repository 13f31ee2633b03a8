"""A/B tests: configure 2-4 variants, start them on a random test share, record the
winner (chosen by reporting on human events only) and send it to the rest.

Campaigns sit below reporting and never import it: the winner is computed by
``reporting.abtests`` (beat task ``reporting.decide_ab_tests``), which calls
:func:`abtest_decide` here.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.content import templating
from campaigns.models import (
    MAX_VARIANTS,
    MIN_VARIANTS,
    VARIANT_LABELS,
    ABTest,
    ABTestState,
    ABVariant,
    Campaign,
    CampaignStatus,
    EmailTemplate,
    SenderIdentity,
    WinnerMetric,
)
from campaigns.selectors import audience_queryset
from campaigns.services import approvals
from campaigns.services.campaigns import _check_sendable, campaign_create, campaign_start
from campaigns.services.errors import CampaignError, TransitionError
from luxmail import audit
from luxmail.actors import Actor


@dataclass(frozen=True)
class VariantSpec:
    """One variant as configured: what differs from the campaign (empty: the same)."""

    subject: str = ""
    template: EmailTemplate | None = None
    sender: SenderIdentity | None = None
    send_at: dt.datetime | None = None


_COPIED = (
    "marketing_id",
    "report_field",
    "throttle_per_minute",
    "track_opens",
    "track_clicks",
    "secure_policy",
    "encrypted_subject_visible",
)
_AUDIENCE = ("segments", "lists", "exclude_segments", "exclude_lists")


def _check_subject(subject: str, template: EmailTemplate) -> None:
    if not subject:
        return
    if len(subject) > 300:
        raise CampaignError("A variant subject can have at most 300 characters.")
    try:
        checked = templating.validate(subject=subject, html=template.html, text=template.text)
    except templating.TemplateError as error:
        raise CampaignError(f"Variant subject: {error}") from None
    if checked.phi_bearing and not template.phi_bearing:
        raise CampaignError(
            "A variant subject cannot use PHI fields unless its template already does."
        )


def abtest_configure(
    *,
    campaign: Campaign,
    actor: Actor,
    variants: list[VariantSpec],
    test_percent: int = 20,
    metric: str = WinnerMetric.CLICK_RATE,
    wait_hours: int = 4,
    min_sample: int = 100,
    auto_send_winner: bool = True,
    request: HttpRequest | None = None,
) -> ABTest:
    """Set up (or redo) the A/B test of a draft campaign: one draft campaign per variant
    with the campaign's audience and settings. Audits ``abtest.configure``. Raises
    :class:`CampaignError` for a bad configuration."""
    if not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        raise CampaignError(f"An A/B test has {MIN_VARIANTS} to {MAX_VARIANTS} variants.")
    if not 2 <= test_percent <= 100:
        raise CampaignError("The test share must be between 2 % and 100 % of the audience.")
    if not 1 <= wait_hours <= 24 * 14:
        raise CampaignError("The wait before choosing a winner must be 1 to 336 hours.")
    if min_sample < 1:
        raise CampaignError("The minimum sample must be at least 1 delivered message.")
    if metric not in WinnerMetric.values:
        raise CampaignError("Unknown winner metric.")
    with transaction.atomic():
        parent = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if parent.status != CampaignStatus.DRAFT:
            raise TransitionError("Only a draft campaign can get an A/B test.")
        if ABVariant.objects.filter(campaign=parent).exists():
            raise CampaignError("A variant cannot have an A/B test of its own.")
        test, _ = ABTest.objects.get_or_create(campaign=parent)
        if test.state != ABTestState.DRAFT:
            raise TransitionError("This A/B test has already started.")
        templates = [spec.template or parent.template for spec in variants]
        for spec, template in zip(variants, templates, strict=True):
            if template is None:
                raise CampaignError("Choose a template for the campaign or for every variant.")
            _check_subject(spec.subject.strip(), template)
        old = list(test.variants.values_list("campaign_id", flat=True))
        test.variants.all().delete()
        Campaign.objects.filter(pk__in=old).delete()
        fields: dict[str, Any] = {key: getattr(parent, key) for key in _COPIED}
        fields.update({key: list(getattr(parent, key).all()) for key in _AUDIENCE})
        for label, spec, template in zip(VARIANT_LABELS, variants, templates, strict=False):
            child = campaign_create(
                name=f"{parent.name} · variant {label}"[:200],
                actor=actor,
                template=template,
                sender=spec.sender or parent.sender,
                **fields,
            )
            ABVariant.objects.create(
                test=test,
                label=label,
                campaign=child,
                subject=spec.subject.strip(),
                send_at=spec.send_at,
            )
        test.test_percent = test_percent
        test.metric = metric
        test.wait_hours = wait_hours
        test.min_sample = min_sample
        test.auto_send_winner = auto_send_winner
        test.full_clean()
        test.save()
        audit.record(
            "abtest.configure",
            actor=actor,
            request=request,
            target=parent,
            details={
                "variants": len(variants),
                "test_percent": test_percent,
                "metric": metric,
                "wait_hours": wait_hours,
                "min_sample": min_sample,
                "auto_send_winner": auto_send_winner,
            },
        )
    return test


def split_shares(ids: list[int], *, seed: int, percent: int, variants: int) -> list[list[int]]:
    """The seeded shuffle: ``ids`` (in id order) shuffled with ``random.Random(seed)``; the
    first ``percent`` % (at least one per variant) dealt round-robin to the variants."""
    shuffled = sorted(ids)
    # Not security: a reproducible split (the seed itself comes from secrets).
    random.Random(seed).shuffle(shuffled)  # noqa: S311
    size = min(len(shuffled), max(variants, round(len(shuffled) * percent / 100)))
    test = shuffled[:size]
    return [test[i::variants] for i in range(variants)]


def abtest_start(*, test: ABTest, actor: Actor, request: HttpRequest | None = None) -> ABTest:
    """Send the variants to the test share: the eligible audience shuffled with a recorded
    seed, split evenly. The campaign itself waits (``scheduled`` without a time) for the
    winner. Audits ``abtest.start`` (seed and sizes; no contact ids)."""
    with transaction.atomic():
        test = ABTest.objects.select_for_update().get(pk=test.pk)
        if test.state != ABTestState.DRAFT:
            raise TransitionError("This A/B test has already started.")
        parent = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("template", "sender")
            .get(pk=test.campaign_id)
        )
        if parent.status != CampaignStatus.DRAFT:
            raise TransitionError("Only a draft campaign can start an A/B test.")
        _check_sendable(parent)
        variants = list(test.variants.select_related("campaign__template"))
        if len(variants) < MIN_VARIANTS:
            raise CampaignError("Configure at least two variants first.")
        phi = any(v.campaign.template and v.campaign.template.phi_bearing for v in variants)
        ids = list(audience_queryset(campaign=parent, phi=phi).values_list("id", flat=True))
        if len(ids) < len(variants):
            raise CampaignError("The audience is smaller than the number of variants.")
        seed = secrets.randbits(62)
        shares = split_shares(ids, seed=seed, percent=test.test_percent, variants=len(variants))
        now = timezone.now()
        for variant, share in zip(variants, shares, strict=True):
            variant.recipients = campaign_start(
                campaign=variant.campaign,
                actor=actor,
                request=request,
                only=share,
                subject=variant.subject,
            )
            variant.save(update_fields=["recipients"])
        last_send = max([now, *(v.send_at for v in variants if v.send_at)])
        test.state = ABTestState.TESTING
        test.seed = seed
        test.audience_size = len(ids)
        test.started_at = now
        test.decide_after = last_send + dt.timedelta(hours=test.wait_hours)
        test.save()
        parent.status = CampaignStatus.SCHEDULED
        parent.scheduled_at = None
        parent.save(update_fields=["status", "scheduled_at", "updated_at"])
        audit.record(
            "abtest.start",
            actor=actor,
            request=request,
            target=parent,
            details={
                "seed": seed,
                "audience": len(ids),
                "variants": {v.label: v.recipients for v in variants},
                "decide_after": test.decide_after.isoformat(),
            },
        )
    return test


def abtest_decide(
    *, test_id: int, winner_id: int | None, p_value: float | None, note: str
) -> ABTest:
    """Record the evaluation of a due test (reporting's beat task, by the system).

    Without a winner only the note changes (the test keeps waiting). With one: sent to
    the rest at once when the test says so, otherwise it awaits approval. Idempotent:
    a test that is no longer ``testing`` is left alone. Audits ``abtest.winner``.
    """
    with transaction.atomic():
        test = ABTest.objects.select_for_update().get(pk=test_id)
        if test.state != ABTestState.TESTING:
            return test
        test.decision_note = note[:300]
        test.p_value = p_value
        if winner_id is None:
            test.save(update_fields=["decision_note", "p_value"])
            return test
        winner = test.variants.get(pk=winner_id)
        test.winner = winner
        test.decided_at = timezone.now()
        test.state = ABTestState.AWAITING_APPROVAL
        test.save()
        audit.record(
            "abtest.winner",
            actor=None,
            target=test.campaign,
            details={"variant": winner.label, "p_value": p_value, "auto": test.auto_send_winner},
        )
        if test.auto_send_winner:
            try:
                with transaction.atomic():
                    abtest_send_winner(test=test, actor=None)
            except CampaignError as error:
                # E.g. a PHI campaign whose approval went stale: a person sends it.
                test.decision_note = f"Winner {winner.label}; not sent automatically: {error}"[:300]
                test.save(update_fields=["decision_note"])
        test.refresh_from_db()
    return test


def abtest_send_winner(
    *,
    test: ABTest,
    actor: Actor,
    variant: ABVariant | None = None,
    request: HttpRequest | None = None,
) -> int:
    """Send the winning variant to everyone in the audience who had no variant: the
    chosen winner, or ``variant`` picked by a person once the wait is over. Returns the
    recipients. Audits ``abtest.winner_sent``."""
    with transaction.atomic():
        test = ABTest.objects.select_for_update().get(pk=test.pk)
        if test.state not in (ABTestState.TESTING, ABTestState.AWAITING_APPROVAL):
            raise TransitionError("The winner of this A/B test was already sent.")
        if variant is None:
            variant = test.winner
        if variant is None or variant.test_id != test.pk:
            raise CampaignError("Choose the variant to send to the rest.")
        if test.state == ABTestState.TESTING and (
            test.decide_after is None or test.decide_after > timezone.now()
        ):
            raise TransitionError("The test is still running; wait until its results are in.")
        child = Campaign.objects.select_related("template", "sender").get(pk=variant.campaign_id)
        parent = Campaign.objects.select_for_update().get(pk=test.campaign_id)
        parent.template = child.template
        parent.sender = child.sender
        parent.save(update_fields=["template", "sender", "updated_at"])
        approvals.approvals_recheck(campaign=parent, actor=actor, request=request)
        skip = tuple(test.variants.values_list("campaign_id", flat=True))
        count = campaign_start(
            campaign=parent, actor=actor, request=request, skip=skip, subject=variant.subject
        )
        test.winner = variant
        test.decided_at = test.decided_at or timezone.now()
        test.state = ABTestState.WINNER_SENT
        test.save()
        audit.record(
            "abtest.winner_sent",
            actor=actor,
            request=request,
            target=parent,
            details={"variant": variant.label, "recipients": count},
        )
    return count


def abtests_due(*, now: dt.datetime | None = None) -> list[int]:
    """Ids of running tests whose wait is over (the beat task evaluates them)."""
    return list(
        ABTest.objects.filter(
            state=ABTestState.TESTING, decide_after__lte=now or timezone.now()
        ).values_list("pk", flat=True)
    )
