"""Segments: the list, the rule builder with a live (audited) count and a masked sample,
save / edit / delete. Segments on PHI conditions are for PHI roles only."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from contacts import segments, selectors, services
from contacts.forms import SegmentForm
from contacts.models import ContactList, Segment
from contacts.views import selectors as ui

SAMPLE_SIZE = 10
PHI_REFUSED = (
    "This segment selects contacts by PHI (health profile or PHI custom fields); only the "
    "PHI Marketer and Admin roles may count, change or export it."
)


def _phi(request: HttpRequest) -> bool:
    return request.user.has_perm("luxmail.view_phi")


def _parse(text: str) -> tuple[Any, list[dict[str, str]]]:
    try:
        return json.loads(text or ""), []
    except ValueError:
        return None, [{"path": "rules", "message": "The rules are not valid JSON."}]


@never_cache
@login_required
@permission_required("contacts.view_segment", raise_exception=True)
def segment_index(request: HttpRequest) -> HttpResponse:
    found = list(ui.segments_all())
    return render(
        request,
        "contacts/segments.html",
        {"nav": "segments", "segments": [(s, ui.uses_phi(s.rules)) for s in found]},
    )


def _builder_context(
    request: HttpRequest,
    *,
    segment: Segment | None,
    form: SegmentForm,
    rules: Any,
    problems: list[dict[str, str]],
) -> dict[str, Any]:
    phi = _phi(request)
    may_save = request.user.has_perm(
        "contacts.change_segment" if segment else "contacts.add_segment"
    )
    locked = bool(segment and ui.uses_phi(segment.rules) and not phi)
    return {
        "nav": "segments",
        "segment": segment,
        "form": form,
        "may_save": may_save and not locked,
        "locked": locked,
        "phi_refused": PHI_REFUSED,
        "builder": {
            "rules": rules,
            "fields": ui.builder_fields(phi=phi),
            "operators": segments.OPERATORS,
            "lists": [{"id": c.pk, "name": c.name} for c in ContactList.objects.order_by("name")],
            "problems": problems,
            "readonly": not may_save or locked,
            "locked": locked,
        },
    }


@never_cache
@login_required
@permission_required("contacts.view_segment", raise_exception=True)
def segment_builder(request: HttpRequest, segment_id: int | None = None) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id) if segment_id else None
    rules: Any = segment.rules if segment else {"all": [{"field": "", "op": "", "value": ""}]}
    initial = {
        "name": segment.name if segment else "",
        "description": segment.description if segment else "",
        "rules": json.dumps(rules),
    }
    form = SegmentForm(request.POST or None, initial=initial)
    problems: list[dict[str, str]] = []
    if request.method == "POST":
        context = _builder_context(request, segment=segment, form=form, rules=rules, problems=[])
        if not context["may_save"]:
            return HttpResponse("Your role cannot change this segment.", status=403)
        if form.is_valid():
            rules, problems = _parse(form.cleaned_data["rules"])
            if not problems and ui.uses_phi(rules) and not _phi(request):
                problems = [{"path": "rules", "message": PHI_REFUSED}]
            if not problems:
                try:
                    saved = _save(request, segment, form, rules)
                except segments.SegmentRuleError as error:
                    problems = [p.as_dict() for p in error.problems]
                except services.ContactsError as error:
                    form.add_error("name", error.message)
                else:
                    messages.success(request, f"Segment “{saved.name}” saved.")
                    return redirect("contacts:segment_edit", segment_id=saved.pk)
            for problem in problems:
                form.add_error("rules", f"{problem['path']}: {problem['message']}")
        else:
            rules, _ = _parse(request.POST.get("rules", ""))
    context = _builder_context(request, segment=segment, form=form, rules=rules, problems=problems)
    return render(
        request, "contacts/segment_builder.html", context, status=400 if problems else 200
    )


def _save(request: HttpRequest, segment: Segment | None, form: SegmentForm, rules: Any) -> Segment:
    if segment is None:
        return services.segment_create(
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            rules=rules,
            actor=request.user,
            request=request,
        )
    return services.segment_update(
        segment=segment,
        name=form.cleaned_data["name"],
        description=form.cleaned_data["description"],
        rules=rules,
        actor=request.user,
        request=request,
    )


@never_cache
@login_required
@permission_required("contacts.view_segment", raise_exception=True)
@require_POST
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The builder's live panel: count (audited ``segment.count``) and a masked sample."""
    rules, problems = _parse(request.POST.get("rules", ""))
    count: int | None = None
    sample: list[dict[str, Any]] = []
    if not problems and ui.uses_phi(rules) and not _phi(request):
        problems = [{"path": "rules", "message": PHI_REFUSED}]
    if not problems:
        try:
            count = services.segment_count_rules(rules=rules, actor=request.user, request=request)
        except segments.SegmentRuleError as error:
            problems = [p.as_dict() for p in error.problems]
        else:
            if count:
                sample = selectors.segment_sample(
                    rules=rules, actor=request.user, size=SAMPLE_SIZE, request=request
                )
    return render(
        request,
        "contacts/_segment_preview.html",
        {
            "count": count,
            "sample": sample,
            "problems": problems,
            # A data attribute, not a <script>: HTMX drops script elements it swaps in.
            "problems_json": json.dumps(problems),
        },
    )


@login_required
@permission_required("contacts.delete_segment", raise_exception=True)
@require_POST
def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    if ui.uses_phi(segment.rules) and not _phi(request):
        return HttpResponse(PHI_REFUSED, status=403)
    services.segment_delete(segment=segment, actor=request.user, request=request)
    messages.success(request, "Segment deleted.")
    return redirect("contacts:segments")
