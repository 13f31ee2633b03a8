"""Journeys REST API (``/api/v1/journeys/``): create, edit the draft, activate, publish,
pause, resume, enroll, push trigger events, read statistics.

Reading needs ``campaigns:read``; every write ``journeys:write``. A definition that
selects or writes by PHI (health-profile fields, PHI custom fields) also needs
``phi:write``. Responses carry ids, states, counts and the definition (criteria, never
a contact's data); contacts appear as UUIDs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.journeys import definition as d
from campaigns.journeys import selectors, services
from campaigns.models import Journey, JourneyEnrollment, JourneyEvent, JourneyVersion
from luxmail.api.permissions import has_scope

READ = "campaigns:read"
WRITE = "journeys:write"

ErrorOut = inline_serializer(
    "JourneyError",
    {
        "detail": serializers.CharField(),
        "code": serializers.CharField(required=False),
        "problems": serializers.ListField(child=serializers.DictField(), required=False),
    },
)


def _error(error: Exception) -> Response:
    if isinstance(error, d.DefinitionError):
        return Response(
            {"detail": str(error), "problems": [p.as_dict() for p in error.problems]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(error, services.PhiRefused):
        return Response({"detail": str(error)}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(error, services.EnrollmentRefused):
        return Response({"detail": str(error), "code": error.code}, status=status.HTTP_409_CONFLICT)
    if isinstance(error, services.TransitionError | services.IdempotencyConflict):
        return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
    if isinstance(error, d.JourneyError):
        return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
    raise error


def _allow_phi(request: Request) -> bool:
    return has_scope(request, "phi:write")


# --- representations --------------------------------------------------------------------------


class StepIn(serializers.Serializer):
    key = serializers.CharField(max_length=32, help_text="Unique in the journey: a-z, 0-9, _ -.")
    kind = serializers.CharField(help_text="send, wait, branch, update or exit")
    name = serializers.CharField(required=False, allow_blank=True, max_length=120)
    config = serializers.DictField(
        required=False,
        help_text="send: template, sender, secure_policy, track_opens, track_clicks; "
        "wait: mode duration (days, hours, minutes) | until_date (field, offset_days, at, "
        "if_missing) | window (days 0=Mon…6=Sun, start, end); branch: mode segment (rules) | "
        "engagement (event opened|clicked|not_opened|not_clicked, step, within_days); "
        "update: action set_field (field, value) | add_to_list | remove_from_list (list).",
    )
    next = serializers.CharField(required=False, allow_blank=True, help_text="Next step key.")
    no = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Branch only: the step when the condition is false.",
    )


class DefinitionIn(serializers.Serializer):
    trigger = serializers.DictField(
        required=False,
        help_text="{kind: manual} | {kind: event, events: [names]} | {kind: segment, segment, "
        "include_existing} | {kind: list, list, include_existing} | {kind: date, field, "
        "offset_days, yearly}",
    )
    reentry = serializers.DictField(
        required=False, help_text="{mode: once} or {mode: after_days, days: N}"
    )
    goal = serializers.JSONField(required=False, allow_null=True, help_text="A segment rule tree.")
    consent = serializers.ChoiceField(choices=list(d.CONSENTS), required=False)
    entry = serializers.CharField(required=False, allow_blank=True)
    steps = StepIn(many=True)


class VersionOut(serializers.Serializer):
    number = serializers.IntegerField()
    published_at = serializers.DateTimeField(allow_null=True)
    definition = serializers.DictField()
    problems = serializers.ListField(child=serializers.DictField())


class StepStatsOut(serializers.Serializer):
    key = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField()
    entered = serializers.IntegerField()
    waiting = serializers.IntegerField()
    sent = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    exited = serializers.IntegerField()
    goal = serializers.IntegerField()


class JourneyOut(serializers.Serializer):
    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    current_version = VersionOut(allow_null=True)
    draft = VersionOut(allow_null=True)
    enrollments = serializers.DictField(child=serializers.IntegerField())
    steps = StepStatsOut(many=True)
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)


def _version(version: JourneyVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "number": version.number,
        "published_at": version.published_at,
        "definition": services.definition_of(version),
        "problems": [p.as_dict() for p in services.version_problems(version)]
        if version.is_draft
        else [],
    }


def _journey_out(journey: Journey) -> dict[str, Any]:
    current = journey.current_version
    summary = selectors.summary(journey)
    stats = selectors.step_stats(current) if current is not None else {}
    steps = []
    if current is not None:
        for step in current.steps.all():
            line = stats.get(step.key, selectors.StepStats())
            steps.append({"key": step.key, "kind": step.kind, "name": step.name, **vars(line)})
    return {
        "id": journey.pk,
        "uuid": journey.uuid,
        "name": journey.name,
        "description": journey.description,
        "status": journey.status,
        "current_version": _version(current),
        "draft": _version(services.draft_version(journey)),
        "enrollments": {
            "total": summary.enrolled,
            "active": summary.active,
            "exited": summary.exited,
            "goal": summary.goal,
            "removed": summary.removed,
        },
        "steps": steps,
        "created_at": journey.created_at,
        "activated_at": journey.activated_at,
    }


def _respond(journey: Journey, code: int = status.HTTP_200_OK) -> Response:
    journey = Journey.objects.select_related("current_version").get(pk=journey.pk)
    return Response(JourneyOut(_journey_out(journey)).data, status=code)


# --- journeys ---------------------------------------------------------------------------------


class JourneyCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    definition = DefinitionIn(required=False)


class JourneyListCreateApi(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(operation_id="journeys_list", responses=JourneyOut(many=True))
    def get(self, request: Request) -> Response:
        journeys = Journey.objects.select_related("current_version").order_by("name")
        return Response([JourneyOut(_journey_out(j)).data for j in journeys[:200]])

    @extend_schema(
        operation_id="journeys_create",
        request=JourneyCreateIn,
        responses={201: JourneyOut, 400: ErrorOut, 403: ErrorOut},
    )
    def post(self, request: Request) -> Response:
        data = JourneyCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            journey = services.journey_create(
                name=values["name"],
                description=values.get("description", ""),
                definition=request.data.get("definition"),
                actor=request.user,
                allow_phi=_allow_phi(request),
                request=request._request,
            )
        except d.JourneyError as error:
            return _error(error)
        return _respond(journey, status.HTTP_201_CREATED)


class JourneyDetailApi(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    @extend_schema(operation_id="journeys_retrieve", responses=JourneyOut)
    def get(self, request: Request, pk: int) -> Response:
        return _respond(get_object_or_404(Journey, pk=pk))

    @extend_schema(
        operation_id="journeys_update",
        request=inline_serializer(
            "JourneyUpdateIn",
            {
                "name": serializers.CharField(required=False),
                "description": serializers.CharField(required=False, allow_blank=True),
            },
        ),
        responses={200: JourneyOut, 400: ErrorOut},
    )
    def patch(self, request: Request, pk: int) -> Response:
        journey = get_object_or_404(Journey, pk=pk)
        try:
            services.journey_update(
                journey=journey,
                actor=request.user,
                name=request.data.get("name"),
                description=request.data.get("description"),
                request=request._request,
            )
        except d.JourneyError as error:
            return _error(error)
        return _respond(journey)


class JourneyDefinitionApi(APIView):
    """Replace the draft's definition (a draft is created from the current version when
    there is none). Publishing or activating makes it run."""

    required_scopes = WRITE

    @extend_schema(
        operation_id="journeys_definition_replace",
        request=DefinitionIn,
        responses={200: JourneyOut, 400: ErrorOut, 403: ErrorOut, 409: ErrorOut},
    )
    def put(self, request: Request, pk: int) -> Response:
        journey = get_object_or_404(Journey, pk=pk)
        DefinitionIn(data=request.data).is_valid(raise_exception=True)
        try:
            services.journey_set_definition(
                journey=journey,
                definition=request.data,
                actor=request.user,
                allow_phi=_allow_phi(request),
                request=request._request,
            )
        except d.JourneyError as error:
            return _error(error)
        return _respond(journey)


def _action(name: str, summary: str) -> Any:
    def post(self: APIView, request: Request, pk: int) -> Response:
        journey = get_object_or_404(Journey, pk=pk)
        try:
            getattr(services, f"journey_{name}")(
                journey=journey, actor=request.user, request=request._request
            )
        except d.JourneyError as error:
            return _error(error)
        return _respond(journey)

    post.__doc__ = summary
    return extend_schema(
        operation_id=f"journeys_{name}",
        request=None,
        responses={200: JourneyOut, 400: ErrorOut, 409: ErrorOut},
        description=summary,
    )(post)


class JourneyActivateApi(APIView):
    required_scopes = WRITE
    post = _action(
        "activate",
        "Draft → active: checks and publishes the draft, then enrolls by the trigger. "
        "400 with every problem (dead ends, missing templates …) when it cannot run. A "
        "paused journey is resumed.",
    )


class JourneyPublishApi(APIView):
    required_scopes = WRITE
    post = _action(
        "publish",
        "Publish the draft of an active or paused journey as its new version; running "
        "enrollments finish on the version they started on.",
    )


class JourneyPauseApi(APIView):
    required_scopes = WRITE
    post = _action("pause", "active → paused: enrollments and queued messages wait.")


class JourneyResumeApi(APIView):
    required_scopes = WRITE
    post = _action("resume", "paused → active: enrollments continue.")


class JourneyArchiveApi(APIView):
    required_scopes = WRITE
    post = _action(
        "archive", "Stop for good: active enrollments are removed, unsent messages cancelled."
    )


# --- enrollments and events -------------------------------------------------------------------


class ContactRefIn(serializers.Serializer):
    contact_uuid = serializers.UUIDField(required=False, help_text="The contact's UUID.")
    external_id = serializers.CharField(
        required=False, max_length=100, help_text="Or the EHR/CRM id (contacts' external_id)."
    )
    email = serializers.EmailField(
        required=False, help_text="Or the address (looked up by its blind index)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("contact_uuid", "external_id", "email") if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Name the contact by exactly one of contact_uuid, external_id or email."
            )
        return attrs


def _find_contact(values: dict[str, Any]) -> Any:
    return selectors.contact_by_reference(
        uuid_text=str(values.get("contact_uuid") or ""),
        external_id=values.get("external_id") or "",
        email=values.get("email") or "",
    )


class EnrollmentOut(serializers.Serializer):
    uuid = serializers.UUIDField()
    contact_uuid = serializers.UUIDField()
    version = serializers.IntegerField()
    state = serializers.CharField()
    step = serializers.CharField(allow_null=True)
    source = serializers.CharField()  # type: ignore[assignment]  # a field named "source"
    entered_at = serializers.DateTimeField()
    next_run_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    exit_reason = serializers.CharField()


def _enrollment_out(enrollment: JourneyEnrollment) -> dict[str, Any]:
    return {
        "uuid": enrollment.uuid,
        "contact_uuid": enrollment.contact.uuid,
        "version": enrollment.version.number,
        "state": enrollment.state,
        "step": enrollment.current_step.key if enrollment.current_step else None,
        "source": enrollment.source,
        "entered_at": enrollment.entered_at,
        "next_run_at": enrollment.next_run_at,
        "finished_at": enrollment.finished_at,
        "exit_reason": enrollment.exit_reason,
    }


class JourneyEnrollmentsApi(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(operation_id="journeys_enrollments_list", responses=EnrollmentOut(many=True))
    def get(self, request: Request, pk: int) -> Response:
        journey = get_object_or_404(Journey, pk=pk)
        rows = selectors.enrollments_recent(journey, limit=200)
        return Response([EnrollmentOut(_enrollment_out(e)).data for e in rows])

    @extend_schema(
        operation_id="journeys_enroll",
        request=ContactRefIn,
        responses={201: EnrollmentOut, 404: ErrorOut, 409: ErrorOut},
        description="Manual enrollment: the contact enters the current version now, "
        "subject to the re-entry rule (409 with a code: already_active, reentry_once, "
        "reentry_wait, journey_inactive).",
    )
    def post(self, request: Request, pk: int) -> Response:
        journey = get_object_or_404(Journey, pk=pk)
        data = ContactRefIn(data=request.data)
        data.is_valid(raise_exception=True)
        contact = _find_contact(data.validated_data)
        if contact is None:
            return Response({"detail": "No contact matches."}, status=status.HTTP_404_NOT_FOUND)
        try:
            enrollment = services.enroll_contact(
                journey=journey, contact=contact, actor=request.user, request=request._request
            )
        except d.JourneyError as error:
            return _error(error)
        enrollment = JourneyEnrollment.objects.select_related(
            "contact", "version", "current_step"
        ).get(pk=enrollment.pk)
        return Response(
            EnrollmentOut(_enrollment_out(enrollment)).data, status=status.HTTP_201_CREATED
        )


class EventIn(ContactRefIn):
    event = serializers.CharField(
        max_length=64, help_text="e.g. missed_appointment, unfilled_prescription, form_completed"
    )
    idempotency_key = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Or the Idempotency-Key header. The same key returns the first result.",
    )
    occurred_at = serializers.DateTimeField(required=False, help_text="When it happened.")


class EventOut(serializers.Serializer):
    event_id = serializers.UUIDField()
    event = serializers.CharField()
    outcome = serializers.CharField(
        help_text="enrolled, already_active, reentry_once or reentry_wait"
    )
    enrolled = serializers.BooleanField()
    enrollment = serializers.UUIDField(allow_null=True)
    replay = serializers.BooleanField(help_text="True when this key was seen before.")
    received_at = serializers.DateTimeField()


def _event_out(event: JourneyEvent, replay: bool) -> dict[str, Any]:
    enrollment = None
    if event.enrollment_id is not None:
        enrollment = (
            JourneyEnrollment.objects.filter(pk=event.enrollment_id)
            .values_list("uuid", flat=True)
            .first()
        )
    return {
        "event_id": event.uuid,
        "event": event.name,
        "outcome": event.outcome,
        "enrolled": event.outcome == "enrolled",
        "enrollment": enrollment,
        "replay": replay,
        "received_at": event.received_at,
    }


class JourneyEventApi(APIView):
    """A trigger event from an EHR or CDP (missed appointment, unfilled prescription,
    form completed): the contact enters the journey unless its re-entry rule says no."""

    required_scopes = WRITE

    @extend_schema(
        operation_id="journeys_event",
        request=EventIn,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="Alternative to the body's idempotency_key.",
            )
        ],
        responses={201: EventOut, 200: EventOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    )
    def post(self, request: Request, pk: int) -> Response:
        journey = get_object_or_404(Journey, pk=pk)
        data = EventIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        key = values.get("idempotency_key") or request.headers.get("Idempotency-Key", "")
        if not key:
            return Response(
                {"detail": "Give an idempotency_key (or the Idempotency-Key header)."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        contact = _find_contact(values)
        if contact is None:
            return Response({"detail": "No contact matches."}, status=status.HTTP_404_NOT_FOUND)
        occurred: dt.datetime | None = values.get("occurred_at")
        try:
            result = services.journey_event_receive(
                journey=journey,
                name=values["event"],
                contact=contact,
                idempotency_key=key,
                occurred_at=occurred,
                actor=request.user,
                request=request._request,
            )
        except d.JourneyError as error:
            return _error(error)
        return Response(
            EventOut(_event_out(result.event, result.replay)).data,
            status=status.HTTP_200_OK if result.replay else status.HTTP_201_CREATED,
        )
