"""A/B test pages: configure and start a test, and send the winner when the test
waits for approval. Rules live in ``campaigns/services/abtests.py``; the side-by-side
results are on the campaign's report (``reporting/abtests.py``)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from campaigns.abtest_forms import ABTestForm
from campaigns.models import ABTest, ABTestState, Campaign
from campaigns.services import abtests
from campaigns.services.errors import CampaignError

VIEW = "campaigns.view_campaign"
CHANGE = "campaigns.change_campaign"
SEND = "campaigns.send_campaign"


def _campaign(pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("template", "sender"), pk=pk)


@login_required
@permission_required(VIEW, raise_exception=True)
def abtest(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign(pk)
    test = ABTest.objects.filter(campaign=campaign).first()
    form = ABTestForm(initial=ABTestForm.initial_for(test))
    if request.method == "POST":
        if not request.user.has_perm(CHANGE):
            return HttpResponse("You may not change campaigns.", status=403)
        form = ABTestForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                abtests.abtest_configure(
                    campaign=campaign,
                    actor=request.user,
                    request=request,
                    variants=form.variants(),
                    test_percent=data["test_percent"],
                    metric=data["metric"],
                    wait_hours=data["wait_hours"],
                    min_sample=data["min_sample"],
                    auto_send_winner=data["auto_send_winner"],
                )
            except CampaignError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "A/B test saved. Start it when you are ready.")
                return redirect("campaigns:abtest", pk=pk)
    variants = list(test.variants.select_related("campaign__template")) if test else []
    return render(
        request,
        "campaigns/abtest.html",
        {
            "nav": "campaigns",
            "campaign": campaign,
            "test": test,
            "variants": variants,
            "form": form,
            "editable": campaign.status == "draft"
            and (test is None or test.state == ABTestState.DRAFT),
            "may_choose": test is not None
            and (
                test.state == ABTestState.AWAITING_APPROVAL
                or (
                    test.state == ABTestState.TESTING
                    and test.decide_after is not None
                    and test.decide_after <= timezone.now()
                )
            ),
            "title": f"A/B test of {campaign.name}",
        },
    )


@login_required
@permission_required(SEND, raise_exception=True)
@require_POST
def abtest_start(request: HttpRequest, pk: int) -> HttpResponse:
    test = get_object_or_404(ABTest, campaign_id=pk)
    try:
        test = abtests.abtest_start(test=test, actor=request.user, request=request)
    except CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"Test started: {sum(v.recipients for v in test.variants.all())} recipients get a "
            "variant; the winner is chosen after the wait.",
        )
    return redirect("campaigns:abtest", pk=pk)


@login_required
@permission_required(SEND, raise_exception=True)
@require_POST
def abtest_send_winner(request: HttpRequest, pk: int) -> HttpResponse:
    test = get_object_or_404(ABTest, campaign_id=pk)
    variant = test.variants.filter(pk=request.POST.get("variant") or 0).first()
    try:
        count = abtests.abtest_send_winner(
            test=test, actor=request.user, variant=variant, request=request
        )
    except CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"The winner is being sent to the other {count} recipients.")
    return redirect("campaigns:abtest", pk=pk)
