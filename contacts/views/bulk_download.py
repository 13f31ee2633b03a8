"""Download of a bulk export job's CSV (issue 20): the URL carries only the job's uuid."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from contacts import bulk_export
from contacts.models import BulkJob


@never_cache
@login_required
@permission_required("contacts.view_contact", raise_exception=True)
@require_GET
def bulk_download(request: HttpRequest, job_uuid: Any) -> StreamingHttpResponse:
    # Only the job's creator: another user (or an admin) gets the same 404 as a wrong id.
    job = BulkJob.objects.filter(uuid=job_uuid, created_by_id=request.user.pk).first()
    if job is None:
        raise Http404
    try:
        prepared = bulk_export.bulk_export_prepare(job=job, user=request.user, request=request)
    except bulk_export.BulkExportError as error:
        raise Http404(error.message) from error
    response = StreamingHttpResponse(prepared.csv_chunks(), content_type=prepared.content_type)
    response["Content-Disposition"] = f'attachment; filename="{prepared.filename}"'
    return response
