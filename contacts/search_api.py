"""REST API of issue 20 (``/api/v1/``): contact search, tags and bulk jobs.

The search runs by POST so that what is searched (a name, an address) stays out of
URLs and access logs, exactly like the contacts page; results are rendered like
``GET /contacts/`` (masked without ``phi:read``). Bulk jobs answer 202 with the job to
poll; the work runs in Celery (``contacts/services/bulk.py``).
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import browse_selectors, search
from contacts.api import ERRORS, READ, SUPPRESS, WRITE, _actor, _error_response, _render_contacts
from contacts.models import BulkAction, BulkJob, ContactStatus, SuppressionReason, Tag
from contacts.services import bulk, tags
from contacts.services.errors import ContactsError
from luxmail import audit
from luxmail.api.permissions import has_scope


class FilterSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=search.MAX_SEARCH_CHARS * 4,
        help_text="Name words (whole or 3+ letter prefixes), an email, a phone or an external id.",
    )  # fmt: skip
    status = serializers.ChoiceField(ContactStatus.choices, required=False)
    list = serializers.IntegerField(required=False, min_value=1)
    tag = serializers.IntegerField(required=False, min_value=1)
    consent = serializers.ChoiceField(search.CONSENT_CHOICES, required=False)
    suppressed = serializers.ChoiceField(["yes", "no"], required=False)
    reason = serializers.ChoiceField(SuppressionReason.choices, required=False)

    def query(self) -> search.ContactQuery:
        data = self.validated_data
        return search.ContactQuery(
            search=search.blind_search(data.get("q") or ""),
            status=data.get("status", ""),
            list_id=data.get("list"),
            tag_id=data.get("tag"),
            consent=data.get("consent", ""),
            suppressed=data.get("suppressed", ""),
            suppression_reason=data.get("reason", ""),
        )


class SearchSerializer(FilterSerializer):
    after = serializers.IntegerField(required=False, min_value=1, help_text="next_cursor")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)


class ContactSearchApi(APIView):
    """Search and filter contacts; keyset pages (``after`` = the previous ``next_cursor``)."""

    required_scopes = READ

    @extend_schema(
        request=SearchSerializer,
        responses={
            200: inline_serializer(
                "ContactSearchPage",
                {
                    "results": serializers.ListField(child=serializers.DictField()),
                    "next_cursor": serializers.IntegerField(allow_null=True),
                },
            ),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        body = SearchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            query = body.query()
        except search.SearchError as error:
            return Response({"detail": error.message}, status=status.HTTP_400_BAD_REQUEST)
        page = search.contacts_page(
            query, after=body.validated_data.get("after"), size=body.validated_data["limit"]
        )
        if query.search:
            audit.record(
                "contact.search",
                actor=_actor(request),
                request=request._request,
                details={"kind": sorted(query.search), "found": bool(page.rows), "api": True},
            )
        return Response(
            {"results": _render_contacts(request, page.rows), "next_cursor": page.next_cursor}
        )


class TagSerializer(serializers.ModelSerializer):
    contacts = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "uuid", "name", "contacts", "created_at"]
        read_only_fields = ["id", "uuid", "created_at"]


class TagListCreateApi(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(responses=TagSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(TagSerializer(browse_selectors.tags_with_counts(), many=True).data)

    @extend_schema(request=TagSerializer, responses={201: TagSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        body = TagSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            tag = tags.tag_create(
                name=body.validated_data["name"], actor=_actor(request), request=request._request
            )
        except tags.TagError as error:
            return _error_response(error)
        return Response(TagSerializer(tag).data, status=status.HTTP_201_CREATED)


class TagDetailApi(APIView):
    required_scopes = WRITE

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        tag = get_object_or_404(Tag, pk=pk)
        tags.tag_delete(tag=tag, actor=_actor(request), request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BulkFilterSerializer(FilterSerializer):
    pass


class BulkSerializer(serializers.Serializer):
    # An export's file is downloaded in the app by the user who started it, not by a key.
    action = serializers.ChoiceField([a for a in BulkAction.values if a != BulkAction.EXPORT])
    list_id = serializers.IntegerField(required=False)
    tag_id = serializers.IntegerField(required=False)
    reason = serializers.ChoiceField(SuppressionReason.choices, required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
    confirm = serializers.BooleanField(required=False, default=False)
    contact_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=bulk.MAX_SELECTION,
    )
    filter = BulkFilterSerializer(required=False)


class BulkJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = BulkJob
        fields = [
            "uuid", "action", "status", "params", "total", "processed", "changed", "skipped",
            "failure", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


def _required_scope(action: str) -> str:
    return SUPPRESS if action == BulkAction.SUPPRESS else WRITE


class BulkStartApi(APIView):
    """Start a bulk action over ``contact_ids`` or every contact matching ``filter``."""

    required_scopes = WRITE

    @extend_schema(request=BulkSerializer, responses={202: BulkJobSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        body = BulkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data: dict[str, Any] = body.validated_data
        if not has_scope(request, _required_scope(data["action"])):
            raise PermissionDenied(
                f"This action needs the '{_required_scope(data['action'])}' scope."
            )
        params = {
            k: data[k] for k in ("list_id", "tag_id", "reason", "note", "confirm") if k in data
        }
        try:
            query = None
            if "filter" in data:
                nested = FilterSerializer(data=request.data.get("filter") or {})
                nested.is_valid(raise_exception=True)
                query = nested.query()
            job = bulk.bulk_job_start(
                action=data["action"],
                params=params,
                contact_ids=data.get("contact_ids") if query is None else None,
                query=query,
                actor=_actor(request),
                request=request._request,
            )
        except search.SearchError as error:
            return Response({"detail": error.message}, status=status.HTTP_400_BAD_REQUEST)
        except ContactsError as error:
            return _error_response(error)
        return Response(BulkJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class BulkJobApi(APIView):
    required_scopes = READ

    @extend_schema(responses=BulkJobSerializer)
    def get(self, request: Request, job_uuid: Any) -> Response:
        return Response(BulkJobSerializer(get_object_or_404(BulkJob, uuid=job_uuid)).data)
