"""PHI approval pages (issue 17): the approval screen of a campaign, the author's
request and the Compliance Officer's decision. Rules live in
``campaigns/services/approvals.py``; these views only parse, call and render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from campaigns.forms import ApprovalDecisionForm
from campaigns.models import Campaign
from campaigns.services import approvals

VIEW = "campaigns.view_campaign"
CHANGE = "campaigns.change_campaign"


def _campaign(pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("template", "sender"), pk=pk)


@login_required
@permission_required(VIEW, raise_exception=True)
def approval(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign(pk)
    overview = approvals.approval_overview(campaign)
    user = request.user
    can_decide = (
        approvals.is_compliance_officer(user)
        and overview.approval is not None
        and user.pk not in (campaign.created_by_id, overview.approval.requested_by_id)
    )
    return render(
        request,
        "campaigns/approval.html",
        {
            "nav": "campaigns",
            "campaign": campaign,
            "overview": overview,
            "can_decide": can_decide,
            "form": ApprovalDecisionForm(),
            "title": f"Approval of {campaign.name}",
        },
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def approval_request(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        approvals.approval_request(campaign=_campaign(pk), actor=request.user, request=request)
    except approvals.CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Approval requested. A Compliance Officer will review it.")
    return redirect("campaigns:approval", pk=pk)


@login_required
@permission_required(approvals.APPROVE_PERMISSION, raise_exception=True)
@require_POST
def approval_decide(request: HttpRequest, pk: int) -> HttpResponse:
    form = ApprovalDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return redirect("campaigns:approval", pk=pk)
    approve = form.cleaned_data["decision"] == "approve"
    try:
        approvals.approval_decide(
            campaign=_campaign(pk),
            actor=request.user,
            approve=approve,
            note=form.cleaned_data["note"],
            request=request,
        )
    except approvals.CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Approved." if approve else "Rejected.")
    return redirect("campaigns:approval", pk=pk)
