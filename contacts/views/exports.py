"""Export page: all contacts, a segment or a list, as CSV or XLSX."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from contacts import exporting
from contacts.forms import ExportForm


@never_cache
@login_required
@permission_required("contacts.view_contact", raise_exception=True)
def export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    may_phi = exporting.may_export_phi(request.user)
    initial = {}
    if request.GET.get("segment", "").isdigit():
        initial = {"scope": "segment", "segment": int(request.GET["segment"])}
    elif request.GET.get("list", "").isdigit():
        initial = {"scope": "list", "contact_list": int(request.GET["list"])}
    form = ExportForm(request.POST or None, initial=initial, may_export_phi=may_phi)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        scope = exporting.ExportScope(
            segment=data["segment"] if data["scope"] == "segment" else None,
            contact_list=data["contact_list"] if data["scope"] == "list" else None,
        )
        try:
            prepared = exporting.contacts_export(
                scope=scope,
                fmt=data["fmt"],
                actor=request.user,
                want_phi=bool(data.get("include_phi")),
                request=request,
            )
        except exporting.ExportError as error:
            form.add_error(None, error.message)
        else:
            response: HttpResponse | StreamingHttpResponse
            if prepared.fmt == "csv":
                response = StreamingHttpResponse(
                    prepared.csv_chunks(), content_type=prepared.content_type
                )
            else:
                response = HttpResponse(prepared.xlsx_bytes(), content_type=prepared.content_type)
            response["Content-Disposition"] = f'attachment; filename="{prepared.filename}"'
            return response
    return render(
        request,
        "contacts/export.html",
        {
            "nav": "contacts",
            "form": form,
            "may_phi": may_phi,
            "phi_columns": [c.header for c in exporting.export_columns(include_phi=True) if c.phi],
            "plain_columns": [c.header for c in exporting.export_columns(include_phi=False)],
        },
    )
