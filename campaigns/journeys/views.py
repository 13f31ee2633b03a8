"""Journey builder pages: list, create, the flow with per-step statistics, step and
settings editors, activation (with every problem shown), pause/resume, enrollments.

Views parse input, call one service or selector and render. Reading needs
``campaigns.view_journey``; every change ``campaigns.change_journey``; journeys that
select or write by PHI are changed by PHI roles only (the services refuse others).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from campaigns.journeys import definition as d
from campaigns.journeys import forms, selectors, services
from campaigns.models import (
    Journey,
    JourneyEnrollment,
    JourneyStatus,
    JourneyStep,
    JourneyVersion,
)
from contacts import segments
from contacts.models import ContactList
from contacts.views import selectors as contact_ui

VIEW = "campaigns.view_journey"
CHANGE = "campaigns.change_journey"


def _page(request: HttpRequest, template: str, context: dict[str, Any], **kw: Any) -> HttpResponse:
    return render(request, template, {"nav": "journeys", **context}, **kw)


def _journey(pk: int) -> Journey:
    return get_object_or_404(Journey.objects.select_related("current_version"), pk=pk)


def _fail(request: HttpRequest, error: d.JourneyError) -> None:
    if isinstance(error, d.DefinitionError) and len(error.problems) > 1:
        messages.error(
            request,
            f"{len(error.problems)} problems stop this journey from running; they are listed "
            "below, next to their steps.",
        )
    else:
        messages.error(request, str(error))


def _detail_url(journey: Journey, anchor: str = "") -> str:
    url = reverse("campaigns:journeys:detail", args=[journey.pk])
    return f"{url}#step-{anchor}" if anchor else url


@login_required
@permission_required(VIEW, raise_exception=True)
def index(request: HttpRequest) -> HttpResponse:
    journeys = list(selectors.journeys_list())
    return _page(
        request,
        "journeys/index.html",
        {
            "journeys": [
                (
                    j,
                    selectors.describe_trigger(j.current_version.trigger)
                    if j.current_version
                    else "",
                )
                for j in journeys
            ]
        },
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
def journey_new(request: HttpRequest) -> HttpResponse:
    form = forms.JourneyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            journey = services.journey_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=request.user,
                request=request,
            )
        except d.JourneyError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                "Journey created. Choose how contacts enter it, then add its steps.",
            )
            return redirect("campaigns:journeys:detail", pk=journey.pk)
    return _page(request, "journeys/new.html", {"form": form})


def _may_edit(request: HttpRequest, journey: Journey, version: JourneyVersion) -> tuple[bool, bool]:
    """(may edit, locked because of PHI)."""
    if journey.status == JourneyStatus.ARCHIVED or not request.user.has_perm(CHANGE):
        return False, False
    if not version.is_draft and version.pk != journey.current_version_id:
        return False, False
    if d.uses_phi(services.definition_of(version)) and not request.user.has_perm(
        "luxmail.view_phi"
    ):
        return False, True
    return True, False


@login_required
@permission_required(VIEW, raise_exception=True)
def journey_detail(request: HttpRequest, pk: int) -> HttpResponse:
    journey = _journey(pk)
    number = request.GET.get("version")
    version = selectors.version_shown(journey, int(number) if number and number.isdigit() else None)
    if version is None:
        raise Http404("No such version.")
    definition = services.definition_of(version)
    problems = d.problems(definition) if version.is_draft else []
    stats_version = version if not version.is_draft else journey.current_version
    stats = selectors.step_stats(stats_version) if stats_version is not None else {}
    may_edit, phi_locked = _may_edit(request, journey, version)
    draft = services.draft_version(journey)
    return _page(
        request,
        "journeys/detail.html",
        {
            "journey": journey,
            "version": version,
            "draft": draft,
            "versions": selectors.versions(journey),
            "flow": selectors.flow(version, stats=stats, problems=problems),
            "journey_problems": [p for p in problems if not p.step],
            "problem_count": len(problems),
            "stats_version": stats_version,
            "summary": selectors.summary(journey),
            "trigger": selectors.describe_trigger(definition["trigger"]),
            "reentry": selectors.describe_reentry(definition["reentry"]),
            "goal": selectors.describe_rules(definition["goal"]) if definition["goal"] else "",
            "consent": d.CONSENTS.get(definition["consent"], definition["consent"]),
            "kinds": [(k, v) for k, v in d.KINDS.items()],
            "may_edit": may_edit,
            "phi_locked": phi_locked,
            "phi_refused": services.PHI_REFUSED,
            "enrollments": selectors.enrollments_recent(journey),
            "enroll_form": forms.EnrollForm(),
            "may_change": request.user.has_perm(CHANGE),
        },
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
def journey_settings(request: HttpRequest, pk: int) -> HttpResponse:
    journey = _journey(pk)
    version = selectors.version_shown(journey)
    assert version is not None
    definition = services.definition_of(version)
    form = forms.SettingsForm(
        request.POST or None, initial=forms.SettingsForm.initial_from(definition)
    )
    rename = forms.JourneyForm(
        request.POST or None,
        prefix="journey",
        initial={"name": journey.name, "description": journey.description},
    )
    if request.method == "POST" and form.is_valid() and rename.is_valid():
        try:
            services.journey_update(
                journey=journey,
                actor=request.user,
                name=rename.cleaned_data["name"],
                description=rename.cleaned_data["description"],
                request=request,
            )
            services.journey_set_settings(
                journey=journey,
                actor=request.user,
                trigger=form.trigger(),
                reentry=form.reentry(),
                consent=form.cleaned_data["consent"],
                request=request,
            )
        except d.JourneyError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Settings saved to the draft.")
            return redirect("campaigns:journeys:detail", pk=journey.pk)
    return _page(
        request, "journeys/settings.html", {"journey": journey, "form": form, "rename": rename}
    )


def _builder_data(request: HttpRequest, rules: Any) -> dict[str, Any]:

    return {
        "rules": rules or {"all": []},
        "fields": contact_ui.builder_fields(phi=request.user.has_perm("luxmail.view_phi")),
        "operators": segments.OPERATORS,
        "lists": [{"id": c.pk, "name": c.name} for c in ContactList.objects.order_by("name")],
        "problems": [],
        "readonly": False,
        "locked": True,
    }


@login_required
@permission_required(CHANGE, raise_exception=True)
def journey_goal(request: HttpRequest, pk: int) -> HttpResponse:
    journey = _journey(pk)
    version = selectors.version_shown(journey)
    assert version is not None
    form = forms.GoalForm(
        request.POST or None, initial={"rules": json.dumps(version.goal) if version.goal else ""}
    )
    rules: Any = version.goal
    if request.method == "POST":
        if form.is_valid():
            rules = form.cleaned_data["rules"]
            try:
                services.journey_set_settings(
                    journey=journey, actor=request.user, goal=rules, request=request
                )
            except d.JourneyError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Goal saved to the draft." if rules else "Goal removed.")
                return redirect("campaigns:journeys:detail", pk=journey.pk)
        else:
            rules = None
    return _page(
        request,
        "journeys/goal.html",
        {"journey": journey, "form": form, "builder": _builder_data(request, rules)},
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def step_add(request: HttpRequest, pk: int) -> HttpResponse:
    journey = _journey(pk)
    try:
        step = services.step_add(
            journey=journey,
            kind=request.POST.get("kind", ""),
            after=request.POST.get("after", ""),
            path=request.POST.get("path", "next"),
            actor=request.user,
            request=request,
        )
    except d.JourneyError as error:
        _fail(request, error)
        return redirect(_detail_url(journey, request.POST.get("after", "")))
    if step.kind == d.EXIT:
        messages.success(request, "Exit added.")
        return redirect(_detail_url(journey, step.key))
    return redirect("campaigns:journeys:step", pk=journey.pk, key=step.key)


def _step_choices(version: JourneyVersion) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    steps = list(version.steps.all())
    every = [(s.key, f"{s.name or s.key} — {d.KINDS.get(s.kind, s.kind).lower()}") for s in steps]
    sends = [(s.key, s.name or s.key) for s in steps if s.kind == d.SEND]
    return every, sends


@login_required
@permission_required(VIEW, raise_exception=True)
def step_edit(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    journey = _journey(pk)
    version = selectors.version_shown(journey)
    if version is None:
        raise Http404("No such journey version.")
    step = get_object_or_404(JourneyStep, version=version, key=key)
    form_class = forms.STEP_FORMS[step.kind]
    every, sends = _step_choices(version)
    extra: dict[str, Any] = {"steps": every, "own_key": key}
    if step.kind == d.BRANCH:
        extra["send_steps"] = [s for s in sends if s[0] != key]
    may_edit, phi_locked = _may_edit(request, journey, version)
    if request.method == "POST" and not may_edit:
        raise Http404("This journey cannot be changed here.")
    form = form_class(request.POST or None, initial=form_class.initial_from(step), **extra)
    if request.method == "POST" and form.is_valid():
        try:
            services.step_update(
                journey=journey,
                key=key,
                actor=request.user,
                name=form.cleaned_data.get("name", ""),
                config=form.config(),
                next_key=form.cleaned_data.get("next_key") if "next_key" in form.fields else None,
                no_key=form.cleaned_data.get("no_key") if "no_key" in form.fields else None,
                request=request,
            )
        except d.DefinitionError as error:
            for problem in error.problems:
                form.add_error(None, problem.message)
        except d.JourneyError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Step “{form.cleaned_data.get('name') or key}” saved.")
            return redirect(_detail_url(journey, key))
    rules = step.config.get("rules") if step.kind == d.BRANCH else None
    if request.method == "POST" and step.kind == d.BRANCH and form.is_valid():
        rules = form.cleaned_data.get("rules")
    return _page(
        request,
        "journeys/step_form.html",
        {
            "journey": journey,
            "step": step,
            "form": form,
            "kind_label": d.KINDS.get(step.kind, step.kind),
            "may_edit": may_edit,
            "phi_locked": phi_locked,
            "phi_refused": services.PHI_REFUSED,
            "builder": _builder_data(request, rules) if step.kind == d.BRANCH else None,
        },
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def step_remove(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    journey = _journey(pk)
    try:
        removed = services.step_remove(
            journey=journey, key=key, actor=request.user, request=request
        )
    except d.JourneyError as error:
        _fail(request, error)
    else:
        messages.success(request, "Step removed." if removed == 1 else f"{removed} steps removed.")
    return redirect(_detail_url(journey))


ACTIONS = {
    "activate": ("journey_activate", "Journey activated: contacts now enter it."),
    "publish": ("journey_publish", "Changes published: new enrollments use the new version."),
    "pause": ("journey_pause", "Journey paused: enrollments and queued messages wait."),
    "resume": ("journey_resume", "Journey resumed."),
    "archive": ("journey_archive", "Journey archived."),
    "discard": ("journey_discard_draft", "Draft discarded."),
}


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def journey_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    journey = _journey(pk)
    if action not in ACTIONS:
        raise Http404("Unknown action.")
    name, done = ACTIONS[action]
    try:
        getattr(services, name)(journey=journey, actor=request.user, request=request)
    except d.JourneyError as error:
        _fail(request, error)
    else:
        messages.success(request, done)
    return redirect("campaigns:journeys:detail", pk=journey.pk)


def _contact_for(request: HttpRequest, reference: str) -> Any:
    """An e-mail address (audited look-up, like the contacts search), else a contact
    UUID, else an external id."""

    reference = reference.strip()
    if "@" in reference:
        return contact_ui.contact_find_by_email(
            email=reference, actor=request.user, request=request
        )
    try:
        uuid.UUID(reference)
    except ValueError:
        return selectors.contact_by_reference(external_id=reference)
    return selectors.contact_by_reference(uuid_text=reference)


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def journey_enroll(request: HttpRequest, pk: int) -> HttpResponse:
    journey = _journey(pk)
    form = forms.EnrollForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the contact's e-mail address, external id or UUID.")
        return redirect("campaigns:journeys:detail", pk=journey.pk)
    contact = _contact_for(request, form.cleaned_data["reference"])
    if contact is None:
        messages.error(request, "No contact matches.")
        return redirect("campaigns:journeys:detail", pk=journey.pk)
    try:
        services.enroll_contact(
            journey=journey, contact=contact, actor=request.user, request=request
        )
    except d.JourneyError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Contact #{contact.pk} entered the journey.")
    return redirect(reverse("campaigns:journeys:detail", args=[journey.pk]) + "#enrollments")


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def enrollment_remove(request: HttpRequest, pk: int, enrollment_id: int) -> HttpResponse:
    enrollment = get_object_or_404(JourneyEnrollment, pk=enrollment_id, journey_id=pk)
    try:
        services.enrollment_remove(enrollment=enrollment, actor=request.user, request=request)
    except d.JourneyError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Contact #{enrollment.contact_id} was taken out of the journey.")
    return redirect(reverse("campaigns:journeys:detail", args=[pk]) + "#enrollments")
