"""Webhook management (scope ``webhooks:manage``; docs/api.md#webhooks), reports and
message events (scope ``reports:read``; docs/api.md#reports).

One view per resource operation; each parses input, calls one service or selector
and serializes the result. The signing secret appears only in the responses of
create and rotate-secret.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from luxmail.api.pagination import CursorPagination
from reporting import reports, selectors, services
from reporting.models import AUTOMATION_KINDS, WebhookDelivery, WebhookEndpoint, WebhookEventType

SCOPE = "webhooks:manage"


class EndpointOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "name",
            "url",
            "event_types",
            "active",
            "disabled_at",
            "disabled_reason",
            "consecutive_failures",
            "last_success_at",
            "last_failure_at",
            "created_at",
        ]
        read_only_fields = fields


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(read_only=True)

    class Meta(EndpointOutput.Meta):
        fields = [*EndpointOutput.Meta.fields, "secret"]
        read_only_fields = fields


class EndpointInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=2000)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices), allow_empty=False
    )


class EndpointUpdateInput(EndpointInput):
    active = serializers.BooleanField(required=False)


class DeliveryOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    endpoint = serializers.UUIDField(source="endpoint.uuid", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_type",
            "event_id",
            "status",
            "attempts",
            "next_attempt_at",
            "response_code",
            "last_error",
            "created_at",
            "delivered_at",
            "payload",
        ]
        read_only_fields = fields


def _config_error(error: services.WebhookConfigError) -> ValidationError:
    return ValidationError({"detail": str(error)})


def _with_secret(issued: services.IssuedSecret) -> dict[str, Any]:
    data = dict(EndpointOutput(issued.endpoint).data)
    data["secret"] = issued.secret
    return data


class WebhookEndpointListApi(APIView):
    """List webhook endpoints, or create one (the response holds its secret, once)."""

    required_scopes = SCOPE

    @extend_schema(responses=EndpointOutput(many=True))
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(selectors.webhook_endpoints(), request, view=self)
        return paginator.get_paginated_response(EndpointOutput(page, many=True).data)

    @extend_schema(request=EndpointInput, responses={201: EndpointWithSecretOutput})
    def post(self, request: Request) -> Response:
        data = EndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            issued = services.webhook_endpoint_create(
                **data.validated_data, actor=request.user, request=request._request
            )
        except services.WebhookConfigError as error:
            raise _config_error(error) from None
        return Response(_with_secret(issued), status=status.HTTP_201_CREATED)


def _endpoint(endpoint_id: str) -> WebhookEndpoint:
    return get_object_or_404(selectors.webhook_endpoints(), uuid=endpoint_id)


class WebhookEndpointDetailApi(APIView):
    """Read, change (including ``active``) or delete one endpoint."""

    required_scopes = SCOPE

    @extend_schema(responses=EndpointOutput)
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(EndpointOutput(_endpoint(endpoint_id)).data)

    @extend_schema(request=EndpointUpdateInput, responses=EndpointOutput)
    def patch(self, request: Request, endpoint_id: str) -> Response:
        endpoint = _endpoint(endpoint_id)
        data = EndpointUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            endpoint = services.webhook_endpoint_update(
                endpoint=endpoint,
                actor=request.user,
                request=request._request,
                **data.validated_data,
            )
        except services.WebhookConfigError as error:
            raise _config_error(error) from None
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, endpoint_id: str) -> Response:
        services.webhook_endpoint_delete(
            endpoint=_endpoint(endpoint_id), actor=request.user, request=request._request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateSecretApi(APIView):
    """Issue a new signing secret; the old one keeps signing for 24 hours."""

    required_scopes = SCOPE

    @extend_schema(request=None, responses=EndpointWithSecretOutput)
    def post(self, request: Request, endpoint_id: str) -> Response:
        issued = services.webhook_endpoint_rotate_secret(
            endpoint=_endpoint(endpoint_id), actor=request.user, request=request._request
        )
        return Response(_with_secret(issued))


class WebhookEndpointTestApi(APIView):
    """Send a ``test`` event now and return the delivery (also for disabled endpoints)."""

    required_scopes = SCOPE

    @extend_schema(request=None, responses=DeliveryOutput)
    def post(self, request: Request, endpoint_id: str) -> Response:
        delivery = services.webhook_send_test(
            endpoint=_endpoint(endpoint_id), actor=request.user, request=request._request
        )
        return Response(DeliveryOutput(delivery).data)


class WebhookDeliveryListApi(APIView):
    """The delivery log of one endpoint, newest first; ``?status=failed`` filters."""

    required_scopes = SCOPE

    @extend_schema(responses=DeliveryOutput(many=True))
    def get(self, request: Request, endpoint_id: str) -> Response:
        status_filter = request.query_params.get("status", "")
        if status_filter and status_filter not in WebhookDelivery.Status.values:
            raise ValidationError(
                {"status": f"Use one of {', '.join(WebhookDelivery.Status.values)}."}
            )
        deliveries = selectors.webhook_deliveries(
            endpoint=_endpoint(endpoint_id), status=status_filter
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(DeliveryOutput(page, many=True).data)


class WebhookDeliveryRedeliverApi(APIView):
    """Queue a finished delivery's event again (same event id, new log row)."""

    required_scopes = SCOPE

    @extend_schema(request=None, responses={202: DeliveryOutput})
    def post(self, request: Request, delivery_id: str) -> Response:
        delivery = get_object_or_404(selectors.webhook_deliveries(), uuid=delivery_id)
        try:
            copy = services.webhook_delivery_redeliver(
                delivery=delivery, actor=request.user, request=request._request
            )
        except services.WebhookConfigError as error:
            raise _config_error(error) from None
        return Response(DeliveryOutput(copy).data, status=status.HTTP_202_ACCEPTED)


class WebhookEventTypesApi(APIView):
    """The event types an endpoint can subscribe to."""

    required_scopes = SCOPE

    @extend_schema(
        responses=inline_serializer(
            "WebhookEventTypes",
            {"event_types": serializers.ListField(child=serializers.CharField())},
        )
    )
    def get(self, request: Request) -> Response:
        return Response({"event_types": list(WebhookEventType.values)})


# --- reports and events (scope reports:read; docs/api.md#reports) ---------------------------

REPORTS_SCOPE = "reports:read"


class ReportQuery(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First day (local date), inclusive.")
    end = serializers.DateField(required=False, help_text="Last day (local date), inclusive.")
    campaign = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, help_text="Campaign ids."
    )
    channel = serializers.ListField(
        child=serializers.ChoiceField(choices=[c for c in reports.CHANNEL_LABELS if c]),
        required=False,
    )
    domain = serializers.CharField(required=False, max_length=253)
    marketing_id = serializers.CharField(required=False, max_length=100)
    from_address = serializers.CharField(required=False, max_length=254)
    report_field = serializers.CharField(required=False, max_length=200)
    sort = serializers.ChoiceField(choices=sorted(reports.SORTABLE), required=False)
    order = serializers.ChoiceField(choices=["asc", "desc"], required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    events = serializers.ChoiceField(
        choices=list(reports.EVENT_SCOPES),
        required=False,
        help_text="human: human events only (unknown ones too when the organization counts "
        "them); all: include automated and privacy-proxy events. Default: the "
        "organization's setting.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("start") and attrs.get("end") and attrs["end"] < attrs["start"]:
            raise ValidationError({"end": "The end date is before the start date."})
        return attrs


def _query(request: Request) -> tuple[reports.Filters, dict[str, Any]]:
    params: dict[str, Any] = {
        key: request.query_params.get(key)
        for key in ("start", "end", "domain", "marketing_id", "from_address", "report_field")
        if request.query_params.get(key)
    }
    for key in ("campaign", "channel"):
        values = request.query_params.getlist(key)
        if values:
            params[key] = values
    for key in ("sort", "order", "limit", "events"):
        if request.query_params.get(key):
            params[key] = request.query_params[key]
    data = ReportQuery(data=params)
    data.is_valid(raise_exception=True)
    values = data.validated_data
    filters = reports.Filters(
        start=values.get("start"),
        end=values.get("end"),
        campaign_ids=tuple(values.get("campaign", ())),
        channels=tuple(values.get("channel", ())),
        domain=values.get("domain", ""),
        marketing_id=values.get("marketing_id", ""),
        from_address=values.get("from_address", ""),
        report_field=values.get("report_field", ""),
    )
    return filters, values


def _counting_of(values: dict[str, Any]) -> reports.Counting:
    """The organization's counting, switched by ``?events=`` when given."""
    return reports.Counting.from_settings(values.get("events"))


class ReportRowOutput(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    campaign_id = serializers.IntegerField(allow_null=True)
    metrics = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Raw sums: messages, queued, sent, delivered, failed, bounced, unknown, "
        "skipped, cancelled, opened_*/clicked_* (unique messages by best label: human, "
        "unknown, privacy_proxy (opens only), automated), opens_*/clicks_* (events; opens_* "
        "include the open a click implies), opens_auto_<kind>/clicks_auto_<kind> (automated "
        "events by kind: scanner, link_preview, crawler, prefetch), unsubscribed, complained.",
    )
    opened = serializers.IntegerField(help_text="Unique opens that count under the setting.")
    clicked = serializers.IntegerField()
    opens = serializers.IntegerField()
    clicks = serializers.IntegerField()
    open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True, help_text="Unique clicks / delivered.")
    click_to_open_rate = serializers.FloatField(allow_null=True)
    automated_share = serializers.FloatField(
        allow_null=True, help_text="Automated opens and clicks / all opens and clicks."
    )
    privacy_proxy_share = serializers.FloatField(
        allow_null=True, help_text="Privacy-proxy opens / all opens and clicks."
    )
    automation_kinds = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Automated opens and clicks by kind (scanner, link_preview, crawler, "
        "prefetch, other).",
    )


def _row(row: reports.Row) -> dict[str, Any]:
    return {
        "key": row.key,
        "label": row.label,
        "campaign_id": row.campaign_id,
        "metrics": dict(row.metrics),
        "opened": row.opened,
        "clicked": row.clicked,
        "opens": row.opens,
        "clicks": row.clicks,
        "open_rate": row.open_rate,
        "click_rate": row.click_rate,
        "click_to_open_rate": row.click_to_open_rate,
        "automated_share": row.automated_share,
        "privacy_proxy_share": row.privacy_proxy_share,
        "automation_kinds": {
            **{
                kind: row.metrics[f"opens_auto_{kind}"] + row.metrics[f"clicks_auto_{kind}"]
                for kind in AUTOMATION_KINDS
            },
            "other": row.opens_auto_other + row.clicks_auto_other,
        },
    }


def _counting(counting: reports.Counting) -> dict[str, Any]:
    return {
        "events": counting.events,
        "overridden": counting.overridden,
        "exclude_automated": counting.exclude_automated,
        "count_unknown": counting.count_unknown,
        "labels": list(counting.labels),
    }


_REPORT_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATE),
    OpenApiParameter("end", OpenApiTypes.DATE),
    OpenApiParameter("campaign", int, many=True, explode=True),
    OpenApiParameter(
        "channel", str, many=True, explode=True, enum=[c for c in reports.CHANNEL_LABELS if c]
    ),
    OpenApiParameter("domain", str),
    OpenApiParameter("marketing_id", str),
    OpenApiParameter("from_address", str),
    OpenApiParameter("report_field", str),
    OpenApiParameter(
        "events",
        str,
        enum=list(reports.EVENT_SCOPES),
        description="human = human events only; all = include automated and privacy-proxy "
        "events. Default: the organization's setting.",
    ),
]


class ReportSummaryApi(APIView):
    """Totals for the filters, the secured-delivery breakdown and the counting rule."""

    required_scopes = REPORTS_SCOPE

    @extend_schema(
        parameters=_REPORT_PARAMETERS,
        responses=inline_serializer(
            "ReportSummary",
            {
                "counting": inline_serializer(
                    "ReportCounting",
                    {
                        "events": serializers.ChoiceField(choices=list(reports.EVENT_SCOPES)),
                        "overridden": serializers.BooleanField(),
                        "exclude_automated": serializers.BooleanField(),
                        "count_unknown": serializers.BooleanField(),
                        "labels": serializers.ListField(child=serializers.CharField()),
                    },
                ),
                "total": ReportRowOutput(),
                "secured": serializers.IntegerField(),
                "channels": ReportRowOutput(many=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        filters, values = _query(request)
        counting = _counting_of(values)
        by_channel = reports.secured_by_channel(filters=filters, counting=counting)
        return Response(
            {
                "counting": _counting(counting),
                "total": _row(reports.totals(filters=filters, counting=counting)),
                "secured": reports.secured_count(by_channel),
                "channels": [_row(row) for row in by_channel],
            }
        )


class ReportSplitApi(APIView):
    """One row per value of ``by``: campaign, marketing_id, report_field, subject,
    from_address, domain, channel or day. Sorted by ``sort`` (default ``sent``)."""

    required_scopes = REPORTS_SCOPE

    @extend_schema(
        parameters=[
            OpenApiParameter("by", str, OpenApiParameter.PATH, enum=list(reports.SPLITS)),
            *_REPORT_PARAMETERS,
            OpenApiParameter("sort", str, enum=sorted(reports.SORTABLE)),
            OpenApiParameter("order", str, enum=["desc", "asc"]),
            OpenApiParameter("limit", int, description="Only the first N rows (all by default)."),
        ],
        responses=inline_serializer(
            "ReportSplit",
            {
                "by": serializers.CharField(),
                "rows": ReportRowOutput(many=True),
                "total_rows": serializers.IntegerField(),
                "total": ReportRowOutput(),
            },
        ),
    )
    def get(self, request: Request, by: str) -> Response:
        if by not in reports.SPLITS:
            raise ValidationError({"by": f"Use one of {', '.join(reports.SPLITS)}."})
        filters, values = _query(request)
        counting = _counting_of(values)
        page = reports.split_page(
            filters=filters,
            by=by,
            counting=counting,
            sort=values.get("sort", "sent"),
            descending=values.get("order", "desc") == "desc",
            limit=values.get("limit"),
        )
        return Response(
            {
                "by": by,
                "counting": _counting(counting),
                "rows": [_row(row) for row in page.rows],
                "total_rows": page.total_rows,
                "total": _row(reports.totals(filters=filters, counting=counting)),
            }
        )


class EventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    link_index = serializers.IntegerField(allow_null=True)
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    automation_kind = serializers.CharField(
        help_text="For automated events: scanner, link_preview, crawler or prefetch "
        "(empty when the verdict named none)."
    )
    reason = serializers.CharField()
    detail = serializers.CharField()
    ruleset_version = serializers.CharField()
    device_unknown = serializers.BooleanField()
    relabeled_from = serializers.CharField()
    method = serializers.CharField()
    ip_prefix = serializers.CharField(help_text="The client's network (IPv4 /24, IPv6 /48).")
    user_agent = serializers.CharField()
    network = serializers.CharField(help_text="Provider of the proxy/gateway range matched.")
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source


class EventPagination(CursorPagination):
    ordering = "id"


class MessageEventListApi(APIView):
    """Every open and click of one message, oldest first, whatever its label."""

    required_scopes = REPORTS_SCOPE

    @extend_schema(responses=EventOutput(many=True))
    def get(self, request: Request, message_id: int) -> Response:
        if selectors.message_summary(message_id=message_id) is None:
            raise NotFound("No such message.")
        paginator = EventPagination()
        page = paginator.paginate_queryset(
            selectors.message_events(message_id=message_id), request, view=self
        )
        return paginator.get_paginated_response(EventOutput(page, many=True).data)
