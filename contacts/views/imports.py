"""Import pages: upload, map columns, the dry-run preview, confirm, progress, result."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from contacts.forms import ImportConfirmForm, ImportMappingForm, ImportUploadForm
from contacts.imports import columns, files
from contacts.imports import selectors as import_selectors
from contacts.imports import services as imports
from contacts.models import ImportJob, ImportJobStatus
from contacts.services import ContactsError

PERMISSION = "contacts.add_importjob"
ERRORS_PER_PAGE = 100


@never_cache
@login_required
@permission_required(PERMISSION, raise_exception=True)
def import_index(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = imports.import_job_create(
                uploaded=form.cleaned_data["file"], actor=request.user, request=request
            )
        except ContactsError as error:
            form.add_error("file", error.message)
        else:
            return redirect("contacts:import_job", job_uuid=job.uuid)
    return render(
        request,
        "contacts/import.html",
        {
            "nav": "contacts",
            "form": form,
            "jobs": import_selectors.import_jobs_recent(),
            "phi": imports.may_import_phi(request.user),
            "fields": columns.catalog(),
            "limits": files.Limits.current(),
        },
    )


def _job(job_uuid: Any) -> ImportJob:
    return get_object_or_404(
        ImportJob.objects.select_related("contact_list", "created_by"), uuid=job_uuid
    )


def _mapping_form(job: ImportJob, request: HttpRequest, data: Any = None) -> ImportMappingForm:
    initial: dict[str, Any] = {
        f"col_{i}": job.mapping.get(h, "") for i, h in enumerate(job.headers)
    }
    initial.update(
        consent_source=job.options.get("consent_source"),
        evidence=job.options.get("evidence", ""),
        contact_list=job.contact_list_id,
    )
    return ImportMappingForm(
        data,
        initial=initial,
        headers=job.headers,
        fields=columns.catalog(),
        phi=imports.may_import_phi(request.user),
    )


def _job_context(request: HttpRequest, job: ImportJob, **extra: Any) -> dict[str, Any]:
    errors = import_selectors.import_job_errors(job=job)
    page = Paginator(errors, ERRORS_PER_PAGE).get_page(request.GET.get("page"))
    context: dict[str, Any] = {
        "nav": "contacts",
        "job": job,
        "progress": import_selectors.import_job_progress(job=job),
        "active": job.status in import_selectors.ACTIVE,
        "editable": job.status in (ImportJobStatus.UPLOADED, ImportJobStatus.PREVIEWED),
        "mapping_form": _mapping_form(job, request),
        "confirm_form": ImportConfirmForm(),
        "page": page,
        "errors_more": max(0, job.error_count - len(job.errors)),
        "phi": imports.may_import_phi(request.user),
    }
    context.update(extra)
    return context


@never_cache
@login_required
@permission_required(PERMISSION, raise_exception=True)
def import_job(request: HttpRequest, job_uuid: Any) -> HttpResponse:
    job = _job(job_uuid)
    if request.method == "POST":
        form = _mapping_form(job, request, request.POST)
        if form.is_valid():
            try:
                imports.import_job_map(
                    job=job,
                    mapping=form.mapping(),
                    consent_source=form.cleaned_data["consent_source"],
                    evidence=form.cleaned_data["evidence"],
                    contact_list=form.cleaned_data["contact_list"],
                    actor=request.user,
                )
            except imports.ImportMappingError as error:
                for problem in error.problems:
                    form.add_error(None, problem)
            except ContactsError as error:
                form.add_error(None, error.message)
            else:
                return redirect("contacts:import_job", job_uuid=job.uuid)
        return render(
            request,
            "contacts/import_job.html",
            _job_context(request, job, mapping_form=form),
            status=400,
        )
    return render(request, "contacts/import_job.html", _job_context(request, job))


@never_cache
@login_required
@permission_required(PERMISSION, raise_exception=True)
def import_status(request: HttpRequest, job_uuid: Any) -> HttpResponse:
    """Polled by HTMX every second while the job is checked or imported."""
    job = _job(job_uuid)
    if job.status not in import_selectors.ACTIVE:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(
        request,
        "contacts/_import_progress.html",
        {"job": job, "progress": import_selectors.import_job_progress(job=job)},
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def import_confirm(request: HttpRequest, job_uuid: Any) -> HttpResponse:
    job = _job(job_uuid)
    form = ImportConfirmForm(request.POST)
    form.is_valid()
    try:
        imports.import_job_confirm(
            job=job,
            actor=request.user,
            skip_invalid=bool(form.cleaned_data.get("skip_invalid")),
            request=request,
        )
    except ContactsError as error:
        messages.error(request, error.message)
    return redirect("contacts:import_job", job_uuid=job.uuid)


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def import_cancel(request: HttpRequest, job_uuid: Any) -> HttpResponse:
    job = _job(job_uuid)
    try:
        imports.import_job_cancel(job=job, actor=request.user, request=request)
    except ContactsError as error:
        messages.error(request, error.message)
        return redirect("contacts:import_job", job_uuid=job.uuid)
    messages.success(request, "Import cancelled; the uploaded file was deleted.")
    return redirect("contacts:import")
