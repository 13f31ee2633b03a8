"""Core staff pages: dashboard, audit log, organization settings, API keys."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_POST

from luxmail import audit, holds, notifications, org, selectors
from luxmail import audit_export as audit_exports
from luxmail.api import services as api_services
from luxmail.forms import (
    ApiKeyForm,
    AuditFilterForm,
    LegalHoldForm,
    LegalHoldReleaseForm,
    OrgSettingsForm,
)
from luxmail.models import ApiKey, LegalHold


@cache_control(max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers ask for on pages that link no icon (error pages,
    the portal): the static icon, whose URL carries its hash in production."""
    return redirect(static("favicon.ico"))


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@login_required
@permission_required("luxmail.use_app", raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard.html", {"settings_obj": org.get_settings()})


@login_required
@permission_required("luxmail.use_app", raise_exception=True)
def notification_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        notifications.mark_all_read(actor=request.user, request=request)
        return redirect("notifications")
    context = {
        "items": notifications.listed(user=request.user),  # type: ignore[arg-type]
        "nav": "notifications",
    }
    return render(request, "notifications.html", context)


@login_required
@permission_required("luxmail.view_audit", raise_exception=True)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else {}
    page = selectors.audit_page(
        selectors.audit_events(**filters),
        before=_cursor(request.GET.get("before")),
        after=_cursor(request.GET.get("after")),
    )
    query = urlencode({k: v for k, v in request.GET.items() if k not in ("before", "after")})
    context = {
        "form": form,
        "page": page,
        "query": query,
        "nav": "audit",
        **selectors.audit_status(),
    }
    return render(request, "audit/list.html", context)


def _cursor(value: str | None) -> int | None:
    """A keyset cursor (an event id) from the query string; anything else is ignored."""
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


@login_required
@permission_required("luxmail.view_audit", raise_exception=True)
def audit_export(request: HttpRequest) -> HttpResponseBase:
    """The filtered range as CSV or JSON, streamed (``luxmail/audit_export.py``)."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        messages.error(request, "Fix the filters before exporting.")
        return redirect("audit")
    try:
        export = audit_exports.audit_export(
            filters=form.filters(),
            fmt=request.GET.get("format", "csv"),
            actor=request.user,
            request=request,
        )
    except audit_exports.AuditExportError as error:
        messages.error(request, str(error))
        return redirect("audit")
    response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@permission_required("luxmail.view_audit", raise_exception=True)
@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    result = audit.verification_run(actor=request.user, request=request)
    if result.ok:
        messages.success(request, result.message)
    else:
        messages.error(request, result.message)
    return redirect("audit")


@login_required
@permission_required("luxmail.manage_settings", raise_exception=True)
def org_settings(request: HttpRequest) -> HttpResponse:
    current = org.get_settings()
    form = OrgSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.fields}
        # Re-read: ModelForm validation mutated ``current`` in memory.
        org.org_settings_update(actor=request.user, request=request, **changes)
        messages.success(request, "Settings saved.")
        return redirect("settings")
    return render(request, "settings/org.html", {"form": form, "nav": "settings"})


@never_cache  # the response may carry a new key's secret, shown once
@login_required
@permission_required("luxmail.manage_api_keys", raise_exception=True)
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = api_services.api_key_create(
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.cleaned_data["expires_at"],
                actor=request.user,
                request=request,
            )
        except ValueError as error:
            form.add_error(None, str(error))
        else:
            form = ApiKeyForm()
    return render(
        request,
        "settings/api_keys.html",
        {
            "form": form,
            "issued": issued,
            "keys": selectors.api_keys(),
            "now": timezone.now(),
            "nav": "settings",
        },
    )


@login_required
@permission_required("luxmail.manage_api_keys", raise_exception=True)
@require_POST
def api_key_revoke(request: HttpRequest, key_uuid: str) -> HttpResponse:
    key = get_object_or_404(ApiKey, uuid=key_uuid)
    api_services.api_key_revoke(key=key, actor=request.user, request=request)
    messages.success(request, f"API key {key.prefix}… revoked.")
    return redirect("api_keys")


# --- legal holds ----------------------------------------------------------------------------


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/settings/" if request.user.has_perm("luxmail.manage_settings") else "/"
    return redirect(target)


@login_required
@permission_required("luxmail.manage_legal_hold", raise_exception=True)
@require_POST
def legal_hold_place(request: HttpRequest) -> HttpResponse:
    form = LegalHoldForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A hold needs a reason (up to 500 characters).")
        return _back(request)
    try:
        holds.legal_hold_place(
            scope=form.cleaned_data["scope"],
            object_id=form.cleaned_data["object_id"] or 0,
            reason=form.cleaned_data["reason"],
            actor=request.user,
            request=request,
        )
    except holds.HoldError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Legal hold placed: retention purges skip this data.")
    return _back(request)


@login_required
@permission_required("luxmail.manage_legal_hold", raise_exception=True)
@require_POST
def legal_hold_release(request: HttpRequest, hold_uuid: str) -> HttpResponse:
    hold = get_object_or_404(LegalHold, uuid=hold_uuid)
    form = LegalHoldReleaseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the hold ends.")
        return _back(request)
    try:
        holds.legal_hold_release(
            hold=hold, reason=form.cleaned_data["reason"], actor=request.user, request=request
        )
    except holds.HoldError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Legal hold released.")
    return _back(request)
