"""Campaigns UI: templates (editor with live preview), sender identities, the campaign
wizard (audience → content → delivery → review), and live campaign progress.

Views parse input, call one service or selector and render (docs/architecture.md).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from campaigns import listing, selectors, services
from campaigns.content import templating
from campaigns.evidence import pack as evidence_pack
from campaigns.forms import (
    CampaignForm,
    ScheduleForm,
    SenderForm,
    SigningKeyForm,
    TemplateForm,
    TestSendForm,
)
from campaigns.models import (
    Campaign,
    CampaignStatus,
    EmailTemplate,
    Message,
    OrgSigningKey,
    SenderIdentity,
    SigningKind,
)
from campaigns.review_forms import CampaignFilterForm, PresendOverrideForm, PreviewForm
from campaigns.secure.errors import SigningKeyError
from luxmail import org

VIEW = "campaigns.view_campaign"
CHANGE = "campaigns.change_campaign"
SEND = "campaigns.send_campaign"
EVIDENCE = "campaigns.export_evidence"


def _page(request: HttpRequest, template: str, context: dict[str, Any], **kw: Any) -> HttpResponse:
    return render(request, template, {"nav": "campaigns", **context}, **kw)


# --- campaigns ----------------------------------------------------------------------------


@login_required
@permission_required(VIEW, raise_exception=True)
def index(request: HttpRequest) -> HttpResponse:
    filter_form = CampaignFilterForm(request.GET or None)
    rows = listing.campaigns_filtered(filters=filter_form.filters())
    return _page(
        request,
        "campaigns/index.html",
        {"rows": rows, "filter_form": filter_form, "title": "Campaigns"},
    )


def _campaign_form_values(form: CampaignForm) -> dict[str, Any]:
    return dict(form.cleaned_data)


@login_required
@permission_required(CHANGE, raise_exception=True)
def campaign_new(request: HttpRequest) -> HttpResponse:

    form = CampaignForm(
        request.POST or None, initial={"secure_policy": org.get_settings().default_secure_policy}
    )
    if request.method == "POST" and form.is_valid():
        data = _campaign_form_values(form)
        try:
            campaign = services.campaign_create(actor=request.user, request=request, **data)
        except services.CampaignError as error:
            form.add_error(None, str(error))
        else:
            return redirect("campaigns:review", pk=campaign.pk)
    return _page(request, "campaigns/campaign_form.html", {"form": form, "title": "New campaign"})


@login_required
@permission_required(CHANGE, raise_exception=True)
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        messages.info(request, "This campaign has started; it can no longer be edited.")
        return redirect("campaigns:detail", pk=pk)
    initial = {
        "name": campaign.name,
        "marketing_id": campaign.marketing_id,
        "report_field": campaign.report_field,
        "segments": campaign.segments.all(),
        "lists": campaign.lists.all(),
        "exclude_segments": campaign.exclude_segments.all(),
        "exclude_lists": campaign.exclude_lists.all(),
        "template": campaign.template,
        "sender": campaign.sender,
        "preheader": campaign.preheader,
        "secure_policy": campaign.secure_policy,
        "throttle_per_minute": campaign.throttle_per_minute,
        "track_opens": campaign.track_opens,
        "track_clicks": campaign.track_clicks,
    }
    form = CampaignForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_update(
                campaign=campaign,
                actor=request.user,
                request=request,
                **_campaign_form_values(form),
            )
        except services.CampaignError as error:
            form.add_error(None, str(error))
        else:
            return redirect("campaigns:review", pk=pk)
    return _page(
        request,
        "campaigns/campaign_form.html",
        {"form": form, "campaign": campaign, "title": f"Edit {campaign.name}"},
    )


@login_required
@permission_required(VIEW, raise_exception=True)
@require_POST
def audience_count(request: HttpRequest) -> HttpResponse:
    """HTMX: the recipient count of the audience being chosen (no PHI, counts only)."""
    form = CampaignForm(request.POST)
    form.is_valid()  # the audience fields validate on their own
    data = form.cleaned_data
    counts = selectors.audience_counts_for(
        segments=list(data.get("segments") or []),
        lists=list(data.get("lists") or []),
        exclude_segments=list(data.get("exclude_segments") or []),
        exclude_lists=list(data.get("exclude_lists") or []),
        phi=bool(data.get("template") and data["template"].phi_bearing),
    )
    return render(request, "campaigns/_audience_count.html", {"counts": counts})


@login_required
@permission_required(VIEW, raise_exception=True)
def campaign_review(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("template", "sender"), pk=pk)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        return redirect("campaigns:detail", pk=pk)
    fields = selectors.missing_field_counts(campaign=campaign, actor=request.user, request=request)
    preview_form = PreviewForm(request.GET or None)
    return _page(
        request,
        "campaigns/review.html",
        {
            "campaign": campaign,
            "summary": selectors.audience_summary(campaign=campaign),
            "warnings": selectors.campaign_warnings(campaign=campaign),
            "fields": fields,
            "presend": services.presend_check(campaign=campaign, fields=fields),
            "override_form": PresendOverrideForm(),
            "is_admin": selectors.user_is_admin(request.user),
            "preview_form": preview_form,
            "preview_query": _preview_query(preview_form),
            "schedule_form": ScheduleForm(),
            "approval": services.approval_status(campaign),
            "test_form": TestSendForm(initial={"addresses": services.seed_addresses_text()}),
            "title": f"Review {campaign.name}",
        },
    )


def _preview_query(form: PreviewForm) -> str:
    """The review page's preview choice as the preview frames' query string."""
    if not form.is_bound or not form.is_valid():
        return ""
    query = QueryDict(mutable=True)
    if form.cleaned_data.get("contact"):
        query["contact"] = str(form.cleaned_data["contact"])
    if form.cleaned_data.get("missing"):
        query["missing"] = "on"
    return query.urlencode()


@login_required
@permission_required(SEND, raise_exception=True)
@require_POST
def campaign_schedule(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        errors = form.errors.get("at") or [
            "Give a valid date and time, or leave it empty to send now."
        ]
        messages.error(request, " ".join(str(e) for e in errors))
        return redirect("campaigns:review", pk=pk)
    try:
        services.presend_require(campaign=campaign)
        campaign = services.campaign_schedule(
            campaign=campaign, actor=request.user, at=form.cleaned_data["at"], request=request
        )
    except services.CampaignError as error:
        messages.error(request, str(error))
        return redirect("campaigns:review", pk=pk)
    if campaign.status == CampaignStatus.SCHEDULED:
        messages.success(request, "The campaign is scheduled.")
    else:
        messages.success(request, f"Sending to {campaign.recipients:,} recipients.")
    return redirect("campaigns:detail", pk=pk)


@login_required
@permission_required(SEND, raise_exception=True)
@require_POST
def campaign_test_send(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    form = TestSendForm(request.POST)
    if form.is_valid():
        addresses = [a for a in form.cleaned_data["addresses"].replace(";", ",").split(",")]
        try:
            accepted = services.campaign_test_send(
                campaign=campaign, addresses=addresses, actor=request.user, request=request
            )
        except services.CampaignError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request, f"Test message accepted by the relay for {accepted} address(es)."
            )
    return redirect("campaigns:review", pk=pk)


@login_required
@permission_required(VIEW, raise_exception=True)
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("template", "sender"), pk=pk)
    return _page(
        request,
        "campaigns/detail.html",
        {
            "campaign": campaign,
            "progress": selectors.campaign_progress(campaign),
            "unknown": selectors.unknown_messages(campaign)[:200],
            "skipped": selectors.skipped_messages(campaign),
            "latest": selectors.latest_messages(campaign),
            "title": campaign.name,
        },
    )


@login_required
@permission_required(VIEW, raise_exception=True)
def campaign_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """HTMX partial polled while the campaign is sending."""
    campaign = get_object_or_404(Campaign, pk=pk)
    return render(
        request,
        "campaigns/_progress.html",
        {"campaign": campaign, "progress": selectors.campaign_progress(campaign)},
    )


_ACTIONS: dict[str, tuple[Callable[..., Campaign], str]] = {
    "pause": (services.campaign_pause, "Paused: workers stop after the messages in flight."),
    "resume": (services.campaign_resume, "Resumed."),
    "cancel": (services.campaign_cancel, "Cancelled: unsent messages will not be sent."),
}


@login_required
@permission_required(SEND, raise_exception=True)
@require_POST
def campaign_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    if action not in _ACTIONS:
        return HttpResponse(status=404)
    service, done = _ACTIONS[action]
    extra = {"confirm": request.POST.get("confirm") == "yes"} if action == "resume" else {}
    try:
        service(campaign=campaign, actor=request.user, request=request, **extra)
    except services.CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect("campaigns:detail", pk=pk)


@login_required
@permission_required(VIEW, raise_exception=True)
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One message's delivery record and proof (no content, no address)."""
    message = get_object_or_404(
        Message.objects.select_related("campaign", "contact", "delivery_proof"), pk=pk
    )
    return _page(
        request,
        "campaigns/message_detail.html",
        {
            "message": message,
            "proof": getattr(message, "delivery_proof", None),
            "title": f"Message #{message.pk}",
        },
    )


@login_required
@permission_required(VIEW, raise_exception=True)
def campaign_delivery_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    response = StreamingHttpResponse(
        evidence_pack.delivery_export(campaign=campaign, actor=request.user, request=request),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-delivery.csv"'
    return response


@login_required
@permission_required(EVIDENCE, raise_exception=True)
@require_POST
def campaign_evidence_pack(request: HttpRequest, pk: int) -> FileResponse:
    """Build the signed evidence pack into a temporary file and send it (audited)."""
    campaign = get_object_or_404(Campaign, pk=pk)
    out = tempfile.TemporaryFile()  # noqa: SIM115  (FileResponse closes it)
    evidence_pack.evidence_pack_write(
        campaign=campaign, out=out, actor=request.user, request=request
    )
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=f"{evidence_pack.folder(campaign)}.zip")


@login_required
@permission_required(SEND, raise_exception=True)
@require_POST
def message_resend(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message, pk=pk)
    try:
        services.message_resend(message=message, actor=request.user, request=request)
    except services.CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Message #{message.pk} is queued again.")
    return redirect("campaigns:detail", pk=message.campaign_id)


# --- templates ---------------------------------------------------------------------------


@login_required
@permission_required(VIEW, raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    return _page(
        request,
        "campaigns/templates.html",
        {"templates": EmailTemplate.objects.order_by("name"), "title": "Templates"},
    )


def _template_form(request: HttpRequest, template: EmailTemplate | None) -> HttpResponse:
    initial = (
        {
            "name": template.name,
            "subject": template.subject,
            "html": template.html,
            "text": template.text,
        }
        if template
        else {}
    )
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {k: form.cleaned_data[k] for k in ("name", "subject", "html", "text")}
        try:
            if template is None:
                template = services.template_create(actor=request.user, request=request, **data)
            else:
                template = services.template_update(
                    template=template, actor=request.user, request=request, **data
                )
        except templating.TemplateError as error:
            field = {"subject": "subject", "text body": "text"}.get(error.part, "html")
            form.add_error(field, str(error))
        except services.CampaignError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                f"Template saved{' (PHI-bearing)' if template.phi_bearing else ''}.",
            )
            return redirect("campaigns:template_edit", pk=template.pk)
    return _page(
        request,
        "campaigns/template_form.html",
        {
            "form": form,
            "template": template,
            "schema": templating.template_schema(),
            "can_preview_phi": request.user.has_perm("luxmail.view_phi"),
            "title": template.name if template else "New template",
        },
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
def template_new(request: HttpRequest) -> HttpResponse:
    return _template_form(request, None)


@login_required
@permission_required(CHANGE, raise_exception=True)
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _template_form(request, get_object_or_404(EmailTemplate, pk=pk))


@login_required
@permission_required(VIEW, raise_exception=True)
@require_POST
@xframe_options_sameorigin
@csp_replace(
    {
        "default-src": [NONE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "https:"],
        "frame-ancestors": [SELF],
        "form-action": [NONE],
        "script-src": [NONE],
    }
)
def template_preview(request: HttpRequest) -> HttpResponse:
    """The rendered message, loaded into the editor's sandboxed preview frame.

    Mail HTML needs inline styles, so this response (and only this one) allows them;
    it allows no script, and the frame is sandboxed.
    """
    form = TemplateForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    error = ""
    rendered = None
    try:
        rendered = services.template_preview(
            subject=data.get("subject", ""),
            html=data.get("html", ""),
            text=data.get("text", ""),
            actor=request.user,
            contact_id=data.get("preview_contact"),
            request=request,
            missing_fields=bool(data.get("preview_missing")),
        )
    except (templating.TemplateError, services.CampaignError) as problem:
        error = str(problem)
    response = render(
        request, "campaigns/preview_frame.html", {"rendered": rendered, "error": error}
    )
    response["Cache-Control"] = "no-store"
    return response


# --- sender identities ----------------------------------------------------------------------


@login_required
@permission_required(VIEW, raise_exception=True)
def sender_list(request: HttpRequest) -> HttpResponse:
    return _page(
        request,
        "campaigns/senders.html",
        {"senders": SenderIdentity.objects.order_by("name"), "title": "Sender identities"},
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
def sender_new(request: HttpRequest) -> HttpResponse:
    form = SenderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sender = services.sender_create(
                actor=request.user, request=request, **form.cleaned_data
            )
        except services.CampaignError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Sender identity created. Publish its DKIM record.")
            return redirect("campaigns:sender_detail", pk=sender.pk)
    return _page(request, "campaigns/sender_form.html", {"form": form, "title": "New sender"})


@login_required
@permission_required(VIEW, raise_exception=True)
def sender_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sender = get_object_or_404(SenderIdentity, pk=pk)
    return _page(
        request,
        "campaigns/sender_detail.html",
        {
            "sender": sender,
            "record": selectors.dkim_dns_record(sender),
            "is_admin": selectors.user_is_admin(request.user),
            "title": sender.name,
        },
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def sender_allow_without_dkim(request: HttpRequest, pk: int) -> HttpResponse:
    sender = get_object_or_404(SenderIdentity, pk=pk)
    try:
        services.sender_allow_without_dkim(
            sender=sender,
            allow=request.POST.get("allow") == "1",
            actor=request.user,
            request=request,
        )
    except services.CampaignError as error:
        messages.error(request, str(error))
    return redirect("campaigns:sender_detail", pk=pk)


# --- the organization's signing keys --------------------------------------------------------


@never_cache
@login_required
@permission_required("luxmail.manage_settings", raise_exception=True)
def signing_keys(request: HttpRequest) -> HttpResponse:
    """Show, upload and remove the keys that sign outgoing S/MIME and PGP/MIME mail."""

    forms_by_kind = {kind: SigningKeyForm(initial={"kind": kind}) for kind in SigningKind.values}
    if request.method == "POST":
        kind = request.POST.get("kind", "")
        if request.POST.get("remove") == "1":
            if services.org_signing_key_remove(kind=kind, actor=request.user, request=request):
                messages.success(request, "Signing key removed: messages go out unsigned.")
            return redirect("campaigns:signing_keys")
        form = SigningKeyForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                services.org_signing_key_set(
                    kind=form.cleaned_data["kind"],
                    private_key=form.cleaned_data["private_key"],
                    certificate=form.cleaned_data["certificate"],
                    passphrase=form.cleaned_data["passphrase"],
                    actor=request.user,
                    request=request,
                )
            except SigningKeyError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Signing key saved: new messages are signed with it.")
                return redirect("campaigns:signing_keys")
        if kind in forms_by_kind:
            forms_by_kind[kind] = form
    current = {row.kind: row for row in OrgSigningKey.objects.all()}
    kinds = [
        {"kind": kind, "label": label, "key": current.get(kind), "form": forms_by_kind[kind]}
        for kind, label in SigningKind.choices
    ]
    return render(request, "campaigns/signing_keys.html", {"kinds": kinds, "nav": "settings"})
