"""Campaign review page additions: message preview for a sample contact, the pre-send
check's Admin override, duplicating a campaign, and the campaign calendar.

Views parse input, call one service or selector and render (docs/architecture.md).
"""

from __future__ import annotations

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from campaigns import listing, services
from campaigns.content import templating
from campaigns.content.preheader import with_preheader
from campaigns.models import Campaign
from campaigns.review_forms import MonthForm, PresendOverrideForm, PreviewForm

VIEW = "campaigns.view_campaign"
CHANGE = "campaigns.change_campaign"
SEND = "campaigns.send_campaign"


@login_required
@permission_required(VIEW, raise_exception=True)
@xframe_options_sameorigin
@csp_replace(  # type: ignore[arg-type]  # its stub types views without URL arguments
    {
        "default-src": [NONE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "https:"],
        "frame-ancestors": [SELF],
        "form-action": [NONE],
        "script-src": [NONE],
    }
)
def campaign_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The campaign's message (preheader included) for the review page's sandboxed frames:
    sample data, a chosen contact (PHI-permitted roles only, audited by the crypto
    module), or a contact with missing fields; the HTML or the plain-text part."""
    campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
    form = PreviewForm(request.GET)
    error = ""
    rendered = None
    if not form.is_valid():
        error = "Give a contact id (a number), or leave it empty for sample data."
    elif campaign.template is None:
        error = "Choose a template to see a preview."
    else:
        template = campaign.template
        try:
            rendered = services.template_preview(
                subject=template.subject,
                html=template.html,
                text=template.text,
                actor=request.user,
                contact_id=form.cleaned_data.get("contact"),
                request=request,
                missing_fields=bool(form.cleaned_data.get("missing")),
            )
        except (templating.TemplateError, services.CampaignError) as problem:
            error = str(problem)
        else:
            # Placed after rendering, as campaign_start places it after the text part is
            # derived: the preheader is in the HTML only (the span is escaped text).
            rendered.html = with_preheader(rendered.html, campaign.preheader)
    text_only = request.GET.get("part") == "text"
    response = render(
        request,
        "campaigns/review_preview_frame.html",
        {"rendered": rendered, "error": error, "text_only": text_only},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@permission_required(SEND, raise_exception=True)
@require_POST
def campaign_presend_override(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("template", "sender"), pk=pk)
    form = PresendOverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the check is overridden (the note is audited).")
        return redirect("campaigns:review", pk=pk)
    try:
        services.presend_override(
            campaign=campaign, actor=request.user, note=form.cleaned_data["note"], request=request
        )
    except services.CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The failing items are overridden; the campaign may be sent.")
    return redirect("campaigns:review", pk=pk)


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def campaign_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    try:
        copy = services.campaign_duplicate(campaign=campaign, actor=request.user, request=request)
    except services.CampaignError as error:
        messages.error(request, str(error))
        return redirect("campaigns:detail", pk=pk)
    messages.success(request, f"Duplicated as the draft “{copy.name}”.")
    return redirect("campaigns:edit", pk=copy.pk)


@login_required
@permission_required(VIEW, raise_exception=True)
def campaign_calendar(request: HttpRequest) -> HttpResponse:
    year, month = MonthForm(request.GET).year_month(timezone.localdate())
    shown = listing.calendar_month(year=year, month=month)
    return render(
        request,
        "campaigns/calendar.html",
        {
            "nav": "campaigns",
            "calendar": shown,
            "previous": "{:04d}-{:02d}".format(*shown.previous),
            "next": "{:04d}-{:02d}".format(*shown.next),
            "title": f"Campaign calendar, {shown.title}",
        },
    )
