"""Reporting UI: the report page and downloads, message event logs, campaign links, the
webhook settings pages and the compliance dashboard."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from campaigns.models import Campaign
from luxmail import audit, conf
from reporting import abtests, exports, report_charts, reports, selectors, services
from reporting import compliance as compliance_selectors
from reporting.forms import (
    DeliveryFilterForm,
    ReportFilterForm,
    TrackingOptionsForm,
    WebhookEndpointForm,
)
from reporting.models import WebhookDelivery, WebhookEndpoint

MANAGE = "luxmail.manage_settings"


VIEW_REPORT = "reporting.view_report"
ROWS_SHOWN = 200


def report_for(request: HttpRequest, *, full: bool = False) -> dict[str, Any]:
    """Parse the filters and compute what the page (the first rows) or a download
    (``full``: every row) shows; ``reporting.chart_views`` uses it too."""
    form = ReportFilterForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    data = form.cleaned_data if request.GET and valid else {}
    filters = form.filters() if request.GET and valid else reports.Filters()
    assert isinstance(filters, reports.Filters)
    by = data.get("split") or "campaign"
    sort = data.get("sort") or "sent"
    descending = (data.get("dir") or "desc") == "desc"
    counting = reports.Counting.from_settings()
    try:
        # The per-view "human only / include automated" switch (?events=human|all).
        counting = counting.override(request.GET.get("events") or None)
    except reports.ReportFilterError as error:
        form.add_error(None, str(error))
    limit = None if full else ROWS_SHOWN
    try:
        page = reports.split_page(
            filters=filters, by=by, counting=counting, sort=sort, descending=descending, limit=limit
        )
    except reports.ReportFilterError as error:
        form.add_error(None, str(error))
        sort, descending = "sent", True
        page = reports.split_page(filters=filters, by=by, counting=counting, limit=limit)
    rows = page.rows
    return {
        "total_rows": page.total_rows,
        "form": form,
        "filters": filters,
        "split": reports.SPLITS[by],
        "rows": rows,
        "sort": sort,
        "descending": descending,
        "counting": counting,
        "org_counting": reports.Counting.from_settings(),
        "event_scopes": reports.EVENT_SCOPES,
    }


@login_required
@permission_required(VIEW_REPORT, raise_exception=True)
def index(request: HttpRequest) -> HttpResponse:
    report = report_for(request)
    filters, counting = report["filters"], report["counting"]
    total = reports.totals(filters=filters, counting=counting)
    by_channel = reports.secured_by_channel(filters=filters, counting=counting)
    query = request.GET.copy()
    query.pop("sort", None)
    query.pop("dir", None)
    return render(
        request,
        "reporting/report.html",
        {
            "nav": "reports",
            **report,
            "shown": report["rows"],
            "total": total,
            "by_channel": by_channel,
            "secured": reports.secured_count(by_channel),
            "columns": reports.COLUMNS,
            "table_columns": TABLE_COLUMNS,
            "rate_columns": reports.RATE_COLUMNS,
            "base_query": query.urlencode(),
            "download_query": request.GET.urlencode(),
            "abtest": (
                abtests.abtest_for_campaign(filters.campaign_ids[0])
                if len(filters.campaign_ids) == 1
                else None
            ),
            "charts": report_charts.report_charts(
                filters=filters,
                counting=counting,
                split_rows=report["rows"],
                split_label=report["split"].label,
            ),
        },
    )


# The on-screen table (the downloads have every column of reports.COLUMNS).
TABLE_COLUMNS = (
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("bounced", "Bounced"),
    ("opened", "Opened"),
    ("opened_human", "Human"),
    ("opened_privacy_proxy", "Privacy proxy only"),
    ("opened_automated", "Automated only"),
    ("clicked", "Clicked"),
    ("clicked_human", "Human"),
    ("clicked_automated", "Automated only"),
    ("automated_share", "Automated share"),
    ("unsubscribed", "Unsub."),
    ("complained", "Compl."),
    ("open_rate", "Open rate"),
    ("click_rate", "CTR"),
    ("click_to_open_rate", "CTOR"),
)


@login_required
@permission_required(VIEW_REPORT, raise_exception=True)
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The split report as CSV or XLSX: counts and rates only, formula-neutralized."""
    if fmt not in ("csv", "xlsx"):
        return HttpResponse("Unknown format.", status=404)
    report = report_for(request, full=True)
    if report["form"].errors:
        return HttpResponse("Fix the report filters first.", status=400)
    total = reports.totals(filters=report["filters"], counting=report["counting"])
    split = report["split"]
    counting = report["counting"]
    stamp = timezone.localdate().isoformat()
    # The switch position is in the name: a "human only" file is never mistaken for
    # one with automated events (and the XLSX says so on its "About" sheet).
    name = f"luxmail-report-{split.name}-{counting.events}-{stamp}.{fmt}"
    if fmt == "csv":
        body = exports.to_csv(
            report["rows"], split_label=split.label, total=total, counting=counting
        )
        content_type = "text/csv; charset=utf-8"
    else:
        body = exports.to_xlsx(
            report["rows"],
            split_label=split.label,
            total=total,
            title=f"By {split.label}",
            counting=counting,
        )
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    audit.record(
        "reports.export",
        actor=request.user,
        request=request,
        details={
            "format": fmt,
            "split": split.name,
            "rows": len(report["rows"]),
            "events": counting.events,
        },
    )
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@permission_required(VIEW_REPORT, raise_exception=True)
def message_events(request: HttpRequest, message_id: int) -> HttpResponse:
    """Every event of one message with its label, reason and ruleset version."""
    message = selectors.message_summary(message_id=message_id)
    if message is None:
        raise Http404("No such message.")
    events = selectors.message_events(message_id=message_id)
    return render(
        request,
        "reporting/message_events.html",
        {
            "nav": "reports",
            "message": message,
            "page": Paginator(events, 100).get_page(request.GET.get("page")),
        },
    )


@login_required
@permission_required(VIEW_REPORT, raise_exception=True)
def campaign_links(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A campaign's tracked links (clicks per label) and its honeypot option."""

    campaign = get_object_or_404(Campaign, pk=campaign_id)
    options = selectors.tracking_options(campaign_id=campaign.pk)
    form = TrackingOptionsForm(
        request.POST or None, initial={"honeypot": bool(options and options.honeypot)}
    )
    if request.method == "POST":
        if not request.user.has_perm("campaigns.change_campaign"):
            raise PermissionDenied
        if form.is_valid():
            try:
                services.tracking_options_set(
                    campaign=campaign,
                    honeypot=form.cleaned_data["honeypot"],
                    actor=request.user,
                    request=request,
                )
            except services.TrackingOptionsError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Tracking options saved.")
                return redirect("reporting:campaign_links", campaign.pk)
    return render(
        request,
        "reporting/campaign_links.html",
        {
            "nav": "reports",
            "campaign": campaign,
            "links": selectors.campaign_links(campaign_id=campaign.pk),
            "form": form,
            "editable": campaign.started_at is None
            and request.user.has_perm("campaigns.change_campaign"),
        },
    )


def _endpoint(endpoint_uuid: str) -> WebhookEndpoint:
    return get_object_or_404(selectors.webhook_endpoints(), uuid=endpoint_uuid)


@login_required
@permission_required(MANAGE, raise_exception=True)
def webhooks(request: HttpRequest) -> HttpResponse:
    form = WebhookEndpointForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.webhook_endpoint_create(
                **form.cleaned_data, actor=request.user, request=request
            )
        except services.WebhookConfigError as error:
            form.add_error(None, str(error))
        else:
            form = WebhookEndpointForm()
    return render(
        request,
        "reporting/webhooks.html",
        {
            "nav": "settings",
            "form": form,
            "issued": issued,
            "endpoints": selectors.webhook_endpoints(),
        },
    )


def _detail(request: HttpRequest, endpoint: WebhookEndpoint, **extra: Any) -> HttpResponse:
    filters = DeliveryFilterForm(request.GET or None)
    status = filters.cleaned_data["status"] if filters.is_valid() else ""
    deliveries = selectors.webhook_deliveries(endpoint=endpoint, status=status)
    context = {
        "nav": "settings",
        "endpoint": endpoint,
        "form": extra.pop("form", None)
        or WebhookEndpointForm(
            initial={
                "name": endpoint.name,
                "url": endpoint.url,
                "event_types": endpoint.event_types,
            }
        ),
        "filters": filters,
        "page": Paginator(deliveries, 50).get_page(request.GET.get("page")),
        "outstanding": WebhookDelivery.OUTSTANDING,
        **extra,
    }
    return render(request, "reporting/webhook_detail.html", context)


@login_required
@permission_required(MANAGE, raise_exception=True)
def webhook_detail(request: HttpRequest, endpoint_uuid: str) -> HttpResponse:
    endpoint = _endpoint(endpoint_uuid)
    if request.method != "POST":
        return _detail(request, endpoint)
    form = WebhookEndpointForm(request.POST)
    if form.is_valid():
        try:
            services.webhook_endpoint_update(
                endpoint=endpoint, actor=request.user, request=request, **form.cleaned_data
            )
        except services.WebhookConfigError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Webhook settings saved.")
            return redirect("reporting:webhook_detail", endpoint.uuid)
    return _detail(request, endpoint, form=form)


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_POST
def webhook_action(request: HttpRequest, endpoint_uuid: str, action: str) -> HttpResponse:
    endpoint = _endpoint(endpoint_uuid)
    kwargs: dict[str, Any] = {"endpoint": endpoint, "actor": request.user, "request": request}
    if action == "enable":
        services.webhook_endpoint_enable(**kwargs)
        messages.success(request, f"{endpoint.name} is enabled; waiting deliveries resume.")
    elif action == "disable":
        services.webhook_endpoint_disable(**kwargs)
        messages.success(request, f"{endpoint.name} is disabled; no new events are queued for it.")
    elif action == "test":
        delivery = services.webhook_send_test(**kwargs)
        if delivery.status == WebhookDelivery.Status.SUCCEEDED:
            messages.success(request, f"Test event delivered (HTTP {delivery.response_code}).")
        else:
            messages.error(request, f"Test event not delivered: {delivery.last_error}.")
    elif action == "rotate":
        issued = services.webhook_endpoint_rotate_secret(**kwargs)
        return _detail(request, issued.endpoint, issued=issued)
    elif action == "delete":
        services.webhook_endpoint_delete(**kwargs)
        messages.success(request, f"{endpoint.name} and its delivery log were deleted.")
        return redirect("reporting:webhooks")
    else:
        return HttpResponse("Unknown action.", status=404)
    return redirect("reporting:webhook_detail", endpoint.uuid)


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_POST
def webhook_redeliver(request: HttpRequest, delivery_uuid: str) -> HttpResponse:
    delivery = get_object_or_404(selectors.webhook_deliveries(), uuid=delivery_uuid)
    try:
        services.webhook_delivery_redeliver(delivery=delivery, actor=request.user, request=request)
    except services.WebhookConfigError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The event is queued for delivery again.")
    return redirect("reporting:webhook_detail", delivery.endpoint.uuid)


# --- compliance dashboard (reporting/compliance.py) --------------------------------------


@login_required
@permission_required("luxmail.view_audit", raise_exception=True)
def compliance(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "reporting/compliance.html",
        {"sections": compliance_selectors.compliance_sections(), "nav": "compliance"},
    )


@login_required
@permission_required("luxmail.view_audit", raise_exception=True)
def compliance_export(request: HttpRequest) -> HttpResponse:
    body = compliance_selectors.compliance_csv(
        compliance_selectors.compliance_sections(), base_url=conf.base_url()
    )
    audit.record(
        "compliance.export", actor=request.user, request=request, details={"format": "csv"}
    )
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="compliance-{stamp}.csv"'
    return response
