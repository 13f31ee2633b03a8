"""Deliverability UI: sender health, bounce and complaint lists, sender-side evidence,
mail the parser could not read (with "reprocess"), and the feedback policy.

Views parse input, call one service or selector and render (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from campaigns import services
from campaigns.forms import BounceFilterForm, FeedbackPolicyForm
from campaigns.models import UnparsedFeedback, UnparsedState
from campaigns.sending import health, policy

VIEW = "campaigns.view_campaign"
MANAGE = "luxmail.manage_settings"


@login_required
@permission_required(VIEW, raise_exception=True)
def deliverability(request: HttpRequest) -> HttpResponse:
    form = BounceFilterForm(request.GET or None, providers=health.providers())
    filters: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    events = health.bounce_events(
        kind=filters.get("kind") or "",
        reason=filters.get("reason") or "",
        provider=filters.get("provider") or "",
        campaign_id=filters["campaign"].pk if filters.get("campaign") else None,
        sender_id=filters["sender"].pk if filters.get("sender") else None,
    )
    items = health.sender_health()
    row = policy.current()
    context = {
        "nav": "campaigns",
        "sub": "deliverability",
        "health": items,
        "overall": health.worst_badge(items),
        "form": form,
        "page": Paginator(events, 50).get_page(request.GET.get("page")),
        "sender_events": health.sender_events()[:20],
        "unparsed": UnparsedFeedback.objects.all()[:50],
        "unparsed_pending": UnparsedFeedback.objects.filter(state=UnparsedState.PENDING).count(),
        "policy": row,
        "policy_table": policy.table(row),
        "policy_form": FeedbackPolicyForm(
            initial={name: getattr(row, name) for name in FeedbackPolicyForm.base_fields}
        ),
        "query": request.GET.urlencode(),
    }
    return render(request, "campaigns/deliverability.html", context)


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_POST
def unparsed_reprocess(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(UnparsedFeedback, pk=pk)
    outcome = services.unparsed_reprocess(item=item, actor=request.user, request=request)
    if outcome is None:
        messages.error(request, "This mail was already reprocessed.")
    elif outcome.unparsed:
        messages.warning(request, "The current parser still cannot read this mail.")
    else:
        messages.success(request, "Reprocessed: the mail was read and applied.")
    return redirect("campaigns:deliverability")


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_POST
def unparsed_reprocess_pending(request: HttpRequest) -> HttpResponse:
    done = services.unparsed_reprocess_pending(actor=request.user)
    messages.success(
        request, f"Reprocessed: {done['read']} read, {done['still_unread']} still unreadable."
    )
    return redirect("campaigns:deliverability")


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_POST
def feedback_policy(request: HttpRequest) -> HttpResponse:
    form = FeedbackPolicyForm(request.POST)
    actions = {
        reason.value: request.POST.get(f"action_{reason.value}", "")
        for reason in policy.CONFIGURABLE
        if request.POST.get(f"action_{reason.value}")
    }
    if not form.is_valid():
        messages.error(
            request,
            "Policy not saved: "
            + "; ".join(
                f"{form.fields[name].label}: {' '.join(str(e) for e in errors)}"
                for name, errors in form.errors.items()
            ),
        )
        return redirect("campaigns:deliverability")
    try:
        services.feedback_policy_update(
            actor=request.user, request=request, reason_actions=actions, **form.cleaned_data
        )
    except services.FeedbackPolicyError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Feedback policy saved.")
    return redirect("campaigns:deliverability")
