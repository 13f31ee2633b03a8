"""The local-time page of a campaign: deliver at a wall-clock time in each recipient's
zone, quiet hours, and the planned delivery curve. Rules live in
``campaigns/services/delivery_plans.py`` and ``campaigns/scheduling/``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from campaigns.abtest_forms import DeliveryPlanForm
from campaigns.models import Campaign, DeliveryPlan
from campaigns.scheduling import planner
from campaigns.services import delivery_plans
from campaigns.services.errors import CampaignError

VIEW = "campaigns.view_campaign"
CHANGE = "campaigns.change_campaign"
SEND = "campaigns.send_campaign"


@login_required
@permission_required(VIEW, raise_exception=True)
def delivery_plan(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("template", "sender"), pk=pk)
    plan = DeliveryPlan.objects.filter(campaign=campaign).first()
    initial = (
        {
            "local_date": plan.local_date,
            "local_time": plan.local_time,
            "respect_quiet_hours": plan.respect_quiet_hours,
        }
        if plan
        else {}
    )
    form = DeliveryPlanForm(initial=initial)
    if request.method == "POST":
        schedule = "schedule" in request.POST
        if not request.user.has_perm(SEND if schedule else CHANGE):
            return HttpResponse("You may not do this.", status=403)
        form = DeliveryPlanForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                delivery_plans.delivery_plan_set(
                    campaign=campaign,
                    actor=request.user,
                    request=request,
                    local_date=data["local_date"],
                    local_time=data["local_time"],
                    respect_quiet_hours=data["respect_quiet_hours"],
                )
                if schedule:
                    delivery_plans.delivery_plan_schedule(
                        campaign=campaign, actor=request.user, request=request
                    )
            except CampaignError as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request, "Scheduled by local time." if schedule else "Delivery timing saved."
                )
                return redirect("campaigns:delivery_plan", pk=pk)
    return render(
        request,
        "campaigns/delivery_plan.html",
        {
            "nav": "campaigns",
            "campaign": campaign,
            "plan": plan,
            "form": form,
            "quiet": planner.quiet_hours(),
            "default_zone": planner.default_zone(),
            "curve": planner.planned_curve(campaign),
            "editable": campaign.status in ("draft", "scheduled"),
            "title": f"Delivery timing of {campaign.name}",
        },
    )
