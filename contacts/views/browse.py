"""The contacts page: search, filters, keyset pages, bulk actions, tags, saved views,
and the ICD-10-CM picker's JSON endpoint (issue 20).

The search text can be PHI, so it only ever arrives by POST and is blinded at once
(``contacts/search.py``); the filters are not PHI and live in the URL. Next-page links
carry a contact id cursor, never a page number.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from contacts import browse_selectors, bulk_export, icd10, search
from contacts.browse_forms import (
    BulkForm,
    ContactFilterForm,
    ContactSearchForm,
    SavedViewForm,
    TagForm,
)
from contacts.models import BulkAction, BulkJob, BulkJobStatus, Tag
from contacts.services import bulk, saved_views, tags
from contacts.views.people import _identities, _may_see_phi
from luxmail import audit

BULK_PERMISSIONS = {
    BulkAction.ADD_TO_LIST: "contacts.change_contactlist",
    BulkAction.TAG: "contacts.change_contact",
    BulkAction.UNTAG: "contacts.change_contact",
    BulkAction.SUPPRESS: "contacts.add_suppression",
    BulkAction.DELETE: "contacts.delete_contact",
    BulkAction.EXPORT: "contacts.view_contact",
}


def _filter_data(request: HttpRequest) -> dict[str, Any] | None:
    """The filter parameters: from a saved view (``?view=``), the URL or the POST body."""
    view_uuid = request.GET.get("view")
    if view_uuid:
        parsed = _uuid_or_none(view_uuid)
        view = (
            browse_selectors.saved_view_of(user_id=request.user.pk, view_uuid=parsed)
            if parsed
            else None
        )
        if view is None:
            raise PermissionDenied
        return dict(view.params)
    source = request.POST if request.method == "POST" else request.GET
    return {k: source.get(k) for k in ContactFilterForm.base_fields if source.get(k)} or None


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


@never_cache
@login_required
@permission_required("contacts.view_contact", raise_exception=True)
def contact_list(request: HttpRequest) -> HttpResponse:
    filters = ContactFilterForm(_filter_data(request))
    search_form = ContactSearchForm(request.POST if request.method == "POST" else None)
    blinded: dict[str, Any] = {}
    status = 200
    if request.method == "POST" and search_form.is_valid():
        text = search_form.cleaned_data["q"]
        try:
            blinded = search.blind_search(text)
        except search.SearchError as error:
            search_form.add_error("q", error.message)
            status = 400
    elif request.method == "POST":
        status = 400
    query = filters.query(blinded)
    source = request.POST if request.method == "POST" else request.GET
    after = search.int_or_none(source.get("after"))
    page = search.contacts_page(query, after=after)
    if blinded:
        # Whether a name or an address is a patient's is itself sensitive: every search
        # is on record, with what kind it was and whether it found anyone — never the text.
        kinds = sorted(k for k, v in blinded.items() if v is not None)
        audit.record(
            "contact.search",
            actor=request.user,
            request=request,
            target=page.rows[0] if len(page.rows) == 1 else None,
            details={"kind": kinds, "found": bool(page.rows)},
        )
        if "email_bidx" in blinded:
            if len(page.rows) == 1 and after is None:
                return redirect("contacts:detail", contact_uuid=page.rows[0].uuid)
            if not page.rows:
                search_form.add_error("q", "No contact has this email address.")
    identities = _identities(request, page.rows)
    tag_names = browse_selectors.tag_names_of(contact_ids=[c.pk for c in page.rows])
    filter_params = ContactFilterForm.params_of(query)
    return render(
        request,
        "contacts/list.html",
        {
            "nav": "contacts",
            "search": search_form,
            "searching": bool(blinded),
            "filters": filters,
            "filter_params": filter_params,
            "next_url": (
                "?" + urlencode({**filter_params, "after": str(page.next_cursor)})
                if page.next_cursor and not blinded
                else ""
            ),
            "next_cursor": page.next_cursor,
            "first_page": after is not None,
            "rows": [(c, identities[c.pk], tag_names.get(c.pk, [])) for c in page.rows],
            "phi": _may_see_phi(request),
            "bulk_form": BulkForm(),
            "view_form": SavedViewForm(),
            "saved_views": browse_selectors.saved_views_of(user_id=request.user.pk),
            "recent_jobs": browse_selectors.bulk_jobs_recent(user_id=request.user.pk),
        },
        status=status,
    )


@login_required
@permission_required("contacts.view_contact", raise_exception=True)
@require_POST
def bulk_start(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    back = reverse("contacts:index")
    if not form.is_valid():
        messages.error(request, "Choose an action and what to apply it to.")
        return redirect(back)
    action = form.cleaned_data["action"]
    if not request.user.has_perm(BULK_PERMISSIONS[BulkAction(action)]):
        raise PermissionDenied
    params: dict[str, Any] = {
        "list_id": form.cleaned_data["target_list"].pk
        if form.cleaned_data["target_list"]
        else None,
        "tag_id": form.cleaned_data["target_tag"].pk if form.cleaned_data["target_tag"] else None,
        "reason": form.cleaned_data["suppress_reason"],
        "confirm": bool(form.cleaned_data["confirm_delete"]),
        "phi": bool(form.cleaned_data["export_phi"]),
    }
    try:
        if action in (BulkAction.TAG, BulkAction.UNTAG) and form.cleaned_data["new_tag"]:
            params["tag_id"] = tags.tag_get_or_create(
                name=form.cleaned_data["new_tag"], actor=request.user, request=request
            ).pk
        if form.cleaned_data["scope"] == "all":
            blinded = search.blind_search(form.cleaned_data["q"] or "")
            query = ContactFilterForm(_filter_data(request)).query(blinded)
            job = bulk.bulk_job_start(
                action=action, params=params, query=query, actor=request.user, request=request
            )
        else:
            ids = [v for v in request.POST.getlist("contact") if v.isdigit()]
            job = bulk.bulk_job_start(
                action=action,
                params=params,
                contact_ids=ids[: bulk.MAX_SELECTION + 1],
                actor=request.user,
                request=request,
            )
    except (bulk.BulkError, tags.TagError, search.SearchError) as error:
        messages.error(request, error.message)
        return redirect(back)
    return redirect("contacts:bulk_job", job_uuid=job.uuid)


def _job(request: HttpRequest, job_uuid: Any) -> BulkJob:
    jobs = browse_selectors.bulk_jobs_visible(
        user_id=request.user.pk, see_all=request.user.has_perm("luxmail.manage_settings")
    )
    return get_object_or_404(jobs, uuid=job_uuid)


@never_cache
@login_required
@permission_required("contacts.view_contact", raise_exception=True)
def bulk_job(request: HttpRequest, job_uuid: Any) -> HttpResponse:
    job = _job(request, job_uuid)
    template = "contacts/_bulk_progress.html" if request.htmx else "contacts/bulk_job.html"  # type: ignore[attr-defined]
    context = {
        "nav": "contacts",
        "job": job,
        "active": _active(job),
        "download": bulk_export.bulk_export_ready(job=job, user=request.user),
    }
    response = render(request, template, context)
    if request.htmx and not _active(job):  # type: ignore[attr-defined]
        response["HX-Refresh"] = "true"
    return response


def _active(job: BulkJob) -> bool:
    return job.status in (BulkJobStatus.QUEUED, BulkJobStatus.RUNNING)


@never_cache
@login_required
@permission_required("contacts.view_contact", raise_exception=True)
def tag_index(request: HttpRequest) -> HttpResponse:
    form = TagForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm("contacts.change_contact"):
            raise PermissionDenied
        if form.is_valid():
            try:
                tags.tag_create(name=form.cleaned_data["name"], actor=request.user, request=request)
            except tags.TagError as error:
                form.add_error("name", error.message)
            else:
                messages.success(request, "Tag created.")
                return redirect("contacts:tags")
    return render(
        request,
        "contacts/tags.html",
        {"nav": "contacts", "form": form, "tags": browse_selectors.tags_with_counts()},
        status=400 if form.errors else 200,
    )


@login_required
@permission_required("contacts.change_contact", raise_exception=True)
@require_POST
def tag_delete(request: HttpRequest, tag_id: int) -> HttpResponse:
    tag = get_object_or_404(Tag, pk=tag_id)
    tags.tag_delete(tag=tag, actor=request.user, request=request)
    messages.success(request, "Tag deleted.")
    return redirect("contacts:tags")


@login_required
@permission_required("contacts.view_contact", raise_exception=True)
@require_POST
def view_save(request: HttpRequest) -> HttpResponse:
    form = SavedViewForm(request.POST)
    filters = ContactFilterForm(_filter_data(request))
    if not form.is_valid():
        messages.error(request, "Give the view a name.")
        return redirect("contacts:index")
    try:
        view = saved_views.saved_view_save(
            owner=request.user,
            name=form.cleaned_data["name"],
            params=ContactFilterForm.params_of(filters.query()),
            request=request,
        )
    except saved_views.SavedViewError as error:
        messages.error(request, error.message)
        return redirect("contacts:index")
    messages.success(request, f"View “{view.name}” saved.")
    return redirect(reverse("contacts:index") + "?" + urlencode({"view": str(view.uuid)}))


@login_required
@permission_required("contacts.view_contact", raise_exception=True)
@require_POST
def view_delete(request: HttpRequest, view_uuid: Any) -> HttpResponse:
    view = browse_selectors.saved_view_of(user_id=request.user.pk, view_uuid=view_uuid)
    if view is None:
        raise Http404
    saved_views.saved_view_delete(view=view, actor=request.user, request=request)
    messages.success(request, "View deleted.")
    return redirect("contacts:index")


@login_required
@permission_required("contacts.view_contact", raise_exception=True)
@require_GET
def icd10_search(request: HttpRequest) -> JsonResponse:
    """``?q=diab`` → up to 20 ICD-10-CM codes with descriptions (public data, not PHI)."""
    query = request.GET.get("q", "")[: icd10.MAX_QUERY * 2]
    limit = search.int_or_none(request.GET.get("limit")) or icd10.DEFAULT_RESULTS
    found = icd10.search(query, limit=limit)
    response = JsonResponse({"results": [item.as_dict() for item in found]})
    response["Cache-Control"] = "private, max-age=3600"
    return response
