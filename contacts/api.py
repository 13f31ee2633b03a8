"""Contacts REST API (``/api/v1/``): contacts, consent, suppressions, lists, segments.

Views parse input, call one service or selector and render. PHI appears in responses
only for callers holding ``phi:read`` (every such response writes ``contact.view_phi``
and ``phi.access`` events); others get masked identities and no profile. PHI fields
are accepted only with ``phi:write``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import segments, selectors, services
from contacts.attributes import PROFILE_ATTRIBUTES
from contacts.models import (
    Consent,
    ConsentPurpose,
    ConsentSource,
    Contact,
    ContactList,
    ContactStatus,
    CustomField,
    Segment,
    Suppression,
    SuppressionReason,
)
from luxmail.actors import Actor
from luxmail.api.permissions import has_scope

READ = "contacts:read"
WRITE = "contacts:write"
PHI_READ = "phi:read"
PHI_WRITE = "phi:write"
SUPPRESS = "suppressions:write"


def _actor(request: Request) -> Actor:
    return request.user


# --- errors -------------------------------------------------------------------------------


def _error_response(error: Exception) -> Response:
    if isinstance(error, services.ContactInvalid):
        return Response(
            {
                "detail": error.message,
                "errors": [{"field": e.field, "message": e.message} for e in error.errors],
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(error, segments.SegmentRuleError):
        return Response(
            {"detail": str(error), "errors": [p.as_dict() for p in error.problems]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(error, services.ContactExists | services.ContactHeld):
        return Response({"detail": error.message}, status=status.HTTP_409_CONFLICT)
    if isinstance(error, services.ContactsError):
        return Response({"detail": error.message}, status=status.HTTP_400_BAD_REQUEST)
    raise error


ERRORS = {
    400: inline_serializer(
        "ContactsError",
        {
            "detail": serializers.CharField(),
            "errors": serializers.ListField(child=serializers.DictField(), required=False),
        },
    )
}


# --- contact serializers ------------------------------------------------------------------


class ProfileSerializer(serializers.Serializer):
    birth_date = serializers.DateField(allow_null=True, required=False)
    sex = serializers.ChoiceField(
        choices=PROFILE_ATTRIBUTES["sex"].choices, allow_null=True, required=False
    )
    language = serializers.CharField(allow_null=True, required=False)
    zip_code = serializers.CharField(allow_null=True, required=False)
    conditions = serializers.ListField(
        child=serializers.CharField(), allow_null=True, required=False
    )
    medications = serializers.ListField(
        child=serializers.CharField(), allow_null=True, required=False
    )
    insurance_type = serializers.ChoiceField(
        choices=PROFILE_ATTRIBUTES["insurance_type"].choices, allow_null=True, required=False
    )
    insurance_plan = serializers.CharField(allow_null=True, required=False)
    primary_provider = serializers.CharField(allow_null=True, required=False)
    last_visit = serializers.DateField(allow_null=True, required=False)
    next_appointment = serializers.DateField(allow_null=True, required=False)
    journey_stage = serializers.ChoiceField(
        choices=PROFILE_ATTRIBUTES["journey_stage"].choices, allow_null=True, required=False
    )
    custom = serializers.DictField(required=False, help_text="PHI custom-field values.")


class ContactOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    email = serializers.CharField(help_text="Masked (a***@example.org) without phi:read.")
    first_name = serializers.CharField(allow_null=True)
    last_name = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    domain = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=ContactStatus.choices)
    time_zone = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    phi_visible = serializers.BooleanField()
    custom = serializers.DictField(help_text="Values of custom fields that are not PHI.")
    profile = ProfileSerializer(allow_null=True, help_text="PHI profile; null without phi:read.")


class ContactInSerializer(serializers.Serializer):
    """Contact fields; profile fields and PHI custom fields need the phi:write scope."""

    email = serializers.CharField(required=False)
    first_name = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    last_name = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    phone = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    external_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    time_zone = serializers.CharField(required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=ContactStatus.choices, required=False)
    birth_date = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    sex = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    language = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    zip_code = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    conditions = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )
    medications = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )
    insurance_type = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    insurance_plan = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    primary_provider = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    last_visit = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    next_appointment = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    journey_stage = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    custom = serializers.DictField(required=False, help_text="custom field key → value")


def _render_contacts(request: Request, contacts: list[Contact]) -> list[dict[str, Any]]:
    """Output dicts: decrypted with phi:read (audited), masked otherwise (audited)."""
    show_phi = has_scope(request, PHI_READ)
    phi_keys = set(CustomField.objects.filter(phi=True).values_list("key", flat=True))
    out = []
    if show_phi:
        revealed = selectors.contacts_phi(
            contacts=contacts, actor=_actor(request), request=request._request
        )
    else:
        masked = selectors.contacts_masked(
            contacts=contacts, actor=_actor(request), request=request._request
        )
    plain = selectors.plain_custom_values(contacts=contacts)
    for contact in contacts:
        row: dict[str, Any] = {
            "id": contact.pk,
            "uuid": contact.uuid,
            "domain": contact.domain,
            "external_id": contact.external_id,
            "status": contact.status,
            "time_zone": contact.time_zone,
            "created_at": contact.created_at,
            "updated_at": contact.updated_at,
            "phi_visible": show_phi,
            "custom": plain.get(contact.pk, {}),
        }
        if show_phi:
            values = revealed[contact.pk]
            row.update({k: values[k] for k in selectors.IDENTITY_PHI})
            row["profile"] = {k: values[k] for k in PROFILE_ATTRIBUTES} | {
                "custom": {k: v for k, v in values["custom"].items() if k in phi_keys}
            }
        else:
            row.update(masked[contact.pk].as_dict())
            row["profile"] = None
        out.append(row)
    return out


def _contact_input(request: Request, *, partial: bool) -> dict[str, Any]:
    serializer = ContactInSerializer(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    phi_fields = [name for name in PROFILE_ATTRIBUTES if name in data]
    custom = data.get("custom") or {}
    phi_custom = set(
        CustomField.objects.filter(key__in=list(custom), phi=True).values_list("key", flat=True)
    )
    phi_fields += [f"custom.{key}" for key in sorted(phi_custom)]
    if phi_fields and not has_scope(request, PHI_WRITE):
        raise PermissionDenied(
            f"Writing PHI fields ({', '.join(phi_fields)}) needs the 'phi:write' scope."
        )
    return data


CONTACT_FILTERS = [
    OpenApiParameter("status", str, enum=ContactStatus.values),
    OpenApiParameter("email", str, description="Exact address (looked up by blind index)."),
    OpenApiParameter("external_id", str),
    OpenApiParameter("list", int, description="Only members of this list."),
    OpenApiParameter("segment", int, description="Only contacts matching this segment."),
]


class ContactListCreateApi(generics.GenericAPIView):
    """List contacts (cursor-paginated) or create one."""

    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = ContactOutSerializer
    queryset = Contact.objects.all()

    def get_queryset(self) -> QuerySet[Contact]:
        params = self.request.query_params
        qs = Contact.objects.all()
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        if params.get("email"):
            found = selectors.contact_by_email(email=params["email"])
            qs = qs.filter(pk=found.pk) if found else qs.none()
        if params.get("external_id"):
            qs = qs.filter(external_id=params["external_id"])
        if params.get("list", "").isdigit():
            qs = qs.filter(memberships__contact_list_id=int(params["list"]))
        if params.get("segment", "").isdigit():
            segment = get_object_or_404(Segment, pk=int(params["segment"]))
            qs = qs.filter(pk__in=segments.matching(segment.rules).values("pk"))
        return qs

    @extend_schema(parameters=CONTACT_FILTERS, responses=ContactOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None
        return self.get_paginated_response(_render_contacts(request, list(page)))

    @extend_schema(
        request=ContactInSerializer,
        responses={201: ContactOutSerializer, 409: ERRORS[400], **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _contact_input(request, partial=False)
        try:
            contact = services.contact_create(
                data=data, actor=_actor(request), request=request._request
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(_render_contacts(request, [contact])[0], status=status.HTTP_201_CREATED)


class ContactDetailApi(APIView):
    """Retrieve, update (partial; null clears a field) or delete one contact."""

    required_scopes = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(responses=ContactOutSerializer)
    def get(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        return Response(_render_contacts(request, [contact])[0])

    @extend_schema(
        request=ContactInSerializer,
        responses={200: ContactOutSerializer, 409: ERRORS[400], **ERRORS},
    )
    def patch(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        data = _contact_input(request, partial=True)
        try:
            contact = services.contact_update(
                contact=contact, data=data, actor=_actor(request), request=request._request
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(_render_contacts(request, [contact])[0])

    @extend_schema(responses={204: None, 409: ERRORS[400]})
    def delete(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        try:
            services.contact_delete(
                contact=contact, actor=_actor(request), request=request._request
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContactUpsertApi(APIView):
    """Create or update the contact with this email; blank values leave fields unchanged."""

    required_scopes = WRITE

    @extend_schema(
        request=ContactInSerializer,
        responses={200: ContactOutSerializer, 201: ContactOutSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _contact_input(request, partial=False)
        try:
            contact, created = services.contact_upsert(
                data=data, actor=_actor(request), request=request._request
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(
            _render_contacts(request, [contact])[0],
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


# --- consent --------------------------------------------------------------------------------


class ConsentSerializer(serializers.ModelSerializer):
    present = serializers.SerializerMethodField()

    class Meta:
        model = Consent
        fields = [
            "id",
            "uuid",
            "purpose",
            "source",
            "evidence_ref",
            "granted_at",
            "expires_at",
            "recorded_at",
            "recorded_by",
            "revoked_at",
            "revoked_by",
            "revocation_source",
            "present",
        ]

    def get_present(self, obj: Consent) -> bool:
        return selectors.consent_is_present(obj)


class ConsentGrantSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    # DRF pops declared fields off the class; this is the consent's source, not Field.source.
    source = serializers.ChoiceField(choices=ConsentSource.choices)  # type: ignore[assignment]
    evidence_ref = serializers.CharField(required=False, allow_blank=True, max_length=200)
    granted_at = serializers.DateTimeField(required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ConsentRevokeSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    source = serializers.CharField(  # type: ignore[assignment]  # see ConsentGrantSerializer
        required=False, allow_blank=True, max_length=32
    )


class ConsentListGrantApi(generics.GenericAPIView):
    """A contact's consent history (revoked rows included) or a new grant."""

    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = ConsentSerializer
    queryset = Consent.objects.all()

    @extend_schema(responses=ConsentSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        page = self.paginate_queryset(selectors.contact_consents(contact=contact))
        return self.get_paginated_response(ConsentSerializer(page, many=True).data)

    @extend_schema(request=ConsentGrantSerializer, responses={201: ConsentSerializer, **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        body = ConsentGrantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            consent = services.consent_grant(
                contact=contact,
                actor=_actor(request),
                request=request._request,
                **body.validated_data,
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(ConsentSerializer(consent).data, status=status.HTTP_201_CREATED)


class ConsentRevokeApi(APIView):
    """Revoke every present consent of a purpose (rows are stamped, never deleted)."""

    required_scopes = WRITE

    @extend_schema(
        request=ConsentRevokeSerializer,
        responses=inline_serializer("ConsentRevoked", {"revoked": serializers.IntegerField()}),
    )
    def post(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        body = ConsentRevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        revoked = services.consent_revoke(
            contact=contact, actor=_actor(request), request=request._request, **body.validated_data
        )
        return Response({"revoked": revoked})


# --- suppression ----------------------------------------------------------------------------


class SuppressionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = [
            "id",
            "reason",
            "note",
            "created_by",
            "created_at",
            "removed_at",
            "removed_by",
            "removal_note",
        ]


class SuppressionAddSerializer(serializers.Serializer):
    email = serializers.CharField(required=False)
    contact = serializers.IntegerField(required=False)
    reason = serializers.ChoiceField(choices=SuppressionReason.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class SuppressionListAddApi(generics.GenericAPIView):
    """Suppressions (newest first; ``?active=1`` for current ones) or add one (Admins)."""

    required_scopes = {"GET": READ, "POST": SUPPRESS}
    serializer_class = SuppressionSerializer
    queryset = Suppression.objects.all()

    @extend_schema(
        parameters=[
            OpenApiParameter("active", bool),
            OpenApiParameter("email", str, description="Exact address (blind index)."),
        ],
        responses=SuppressionSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        qs = Suppression.objects.all()
        if request.query_params.get("active") in {"1", "true"}:
            qs = qs.filter(removed_at__isnull=True)
        if request.query_params.get("email"):
            found = selectors.suppression_for_email(email=request.query_params["email"])
            qs = qs.filter(pk=found.pk) if found else qs.none()
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(SuppressionSerializer(page, many=True).data)

    @extend_schema(
        request=SuppressionAddSerializer,
        responses={201: SuppressionSerializer, 200: SuppressionSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = SuppressionAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        contact = get_object_or_404(Contact, pk=data["contact"]) if "contact" in data else None
        try:
            row, created = services.suppression_add(
                email=data.get("email"),
                contact=contact,
                reason=data["reason"],
                note=data.get("note", ""),
                actor=_actor(request),
                request=request._request,
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(
            SuppressionSerializer(row).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SuppressionRemoveApi(APIView):
    """Lift a suppression with a reason; the row and its history stay."""

    required_scopes = SUPPRESS

    @extend_schema(
        request=inline_serializer("SuppressionRemove", {"note": serializers.CharField()}),
        responses={200: SuppressionSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        row = get_object_or_404(Suppression, pk=pk)
        try:
            services.suppression_remove(
                suppression=row,
                note=str(request.data.get("note", "")),
                actor=_actor(request),
                request=request._request,
            )
        except services.ContactsError as error:
            return _error_response(error)
        row.refresh_from_db()
        return Response(SuppressionSerializer(row).data)


# --- lists ------------------------------------------------------------------------------------


class ContactListSerializer(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()

    class Meta:
        model = ContactList
        fields = ["id", "uuid", "name", "description", "created_at", "updated_at", "members"]
        read_only_fields = ["id", "uuid", "created_at", "updated_at", "members"]

    def get_members(self, obj: ContactList) -> int:
        return int(self.context.get("counts", {}).get(obj.pk, 0))


class MembersSerializer(serializers.Serializer):
    contact_ids = serializers.ListField(child=serializers.IntegerField(), max_length=10_000)


class ContactListListCreateApi(generics.GenericAPIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = ContactListSerializer
    queryset = ContactList.objects.all()

    @extend_schema(responses=ContactListSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = list(self.paginate_queryset(ContactList.objects.all()) or [])
        counts = selectors.list_member_counts(lists=page)
        data = ContactListSerializer(page, many=True, context={"counts": counts}).data
        return self.get_paginated_response(data)

    @extend_schema(request=ContactListSerializer, responses={201: ContactListSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        body = ContactListSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            created = services.contact_list_create(
                name=body.validated_data["name"],
                description=body.validated_data.get("description", ""),
                actor=_actor(request),
                request=request._request,
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(ContactListSerializer(created).data, status=status.HTTP_201_CREATED)


class ContactListDetailApi(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(responses=ContactListSerializer)
    def get(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(ContactList, pk=pk)
        counts = selectors.list_member_counts(lists=[item])
        return Response(ContactListSerializer(item, context={"counts": counts}).data)

    @extend_schema(request=ContactListSerializer, responses={200: ContactListSerializer, **ERRORS})
    def patch(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(ContactList, pk=pk)
        body = ContactListSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        try:
            services.contact_list_update(
                contact_list=item,
                name=body.validated_data.get("name"),
                description=body.validated_data.get("description"),
                actor=_actor(request),
                request=request._request,
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(ContactListSerializer(item).data)

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(ContactList, pk=pk)
        try:
            services.contact_list_delete(
                contact_list=item, actor=_actor(request), request=request._request
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ListMembersApi(APIView):
    """Add (POST) or remove (DELETE) members by contact id; both are idempotent."""

    required_scopes = WRITE

    @extend_schema(
        request=MembersSerializer,
        responses={200: inline_serializer("MembersAdded", {"added": serializers.IntegerField()})},
    )
    def post(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(ContactList, pk=pk)
        body = MembersSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            added = services.list_members_add(
                contact_list=item,
                contact_ids=body.validated_data["contact_ids"],
                actor=_actor(request),
                request=request._request,
            )
        except services.ContactsError as error:
            return _error_response(error)
        return Response({"added": added})

    @extend_schema(
        request=MembersSerializer,
        responses={
            200: inline_serializer("MembersRemoved", {"removed": serializers.IntegerField()})
        },
    )
    def delete(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(ContactList, pk=pk)
        body = MembersSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        removed = services.list_members_remove(
            contact_list=item,
            contact_ids=body.validated_data["contact_ids"],
            actor=_actor(request),
            request=request._request,
        )
        return Response({"removed": removed})


# --- segments ---------------------------------------------------------------------------------


class SegmentSerializer(serializers.ModelSerializer):
    rules = serializers.JSONField(
        help_text='Rule tree: {"all"|"any": [node…]} / {"not": node} / '
        '{"field": …, "op": …, "value": …}. See GET /api/v1/segments/fields/.'
    )

    class Meta:
        model = Segment
        fields = [
            "id",
            "uuid",
            "name",
            "description",
            "rules",
            "created_at",
            "updated_at",
            "last_count",
            "last_counted_at",
        ]
        read_only_fields = [
            "id",
            "uuid",
            "created_at",
            "updated_at",
            "last_count",
            "last_counted_at",
        ]


class SegmentListCreateApi(generics.GenericAPIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = SegmentSerializer
    queryset = Segment.objects.all()

    @extend_schema(responses=SegmentSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(Segment.objects.all())
        return self.get_paginated_response(SegmentSerializer(page, many=True).data)

    @extend_schema(request=SegmentSerializer, responses={201: SegmentSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        body = SegmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            segment = services.segment_create(
                name=body.validated_data["name"],
                rules=body.validated_data["rules"],
                description=body.validated_data.get("description", ""),
                actor=_actor(request),
                request=request._request,
            )
        except (services.ContactsError, segments.SegmentRuleError) as error:
            return _error_response(error)
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailApi(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(responses=SegmentSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(SegmentSerializer(get_object_or_404(Segment, pk=pk)).data)

    @extend_schema(request=SegmentSerializer, responses={200: SegmentSerializer, **ERRORS})
    def patch(self, request: Request, pk: int) -> Response:
        segment = get_object_or_404(Segment, pk=pk)
        body = SegmentSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        try:
            services.segment_update(
                segment=segment,
                name=body.validated_data.get("name"),
                rules=body.validated_data.get("rules"),
                description=body.validated_data.get("description"),
                actor=_actor(request),
                request=request._request,
            )
        except (services.ContactsError, segments.SegmentRuleError) as error:
            return _error_response(error)
        return Response(SegmentSerializer(segment).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        segment = get_object_or_404(Segment, pk=pk)
        services.segment_delete(segment=segment, actor=_actor(request), request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentCountApi(APIView):
    """Count the contacts matching a segment now (audited as ``segment.count``)."""

    required_scopes = READ

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "SegmentCount",
                {"segment": serializers.IntegerField(), "count": serializers.IntegerField()},
            ),
            **ERRORS,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        segment = get_object_or_404(Segment, pk=pk)
        try:
            count = services.segment_count(
                segment=segment, actor=_actor(request), request=request._request
            )
        except segments.SegmentRuleError as error:
            return _error_response(error)
        return Response({"segment": segment.pk, "count": count})


class SegmentFieldsApi(APIView):
    """Every field a segment condition can use, with its operators and choices."""

    required_scopes = READ

    @extend_schema(
        responses=inline_serializer(
            "SegmentFields",
            {
                "fields": serializers.ListField(child=serializers.DictField()),
                "operators": serializers.DictField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "fields": [kind.describe() for kind in segments.available_kinds()],
                "operators": segments.OPERATORS,
            }
        )
