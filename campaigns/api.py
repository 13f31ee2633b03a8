"""Campaigns REST API (``/api/v1/``): templates, sender identities, campaigns, bounces.

Views parse input, call one service or selector and render. Scopes: reading needs
``campaigns:read``, editing ``campaigns:write``, sending actions (test-send, schedule,
pause, resume, cancel, resend) ``campaigns:send``, bounce documents ``bounces:write``.
No response contains PHI: campaigns report counts, messages report ids and states.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.content import templating
from campaigns.models import (
    Campaign,
    DkimAlgorithm,
    EmailTemplate,
    Message,
    SenderIdentity,
)
from campaigns.sending import bounces
from contacts.models import ContactList, Segment
from luxmail.models import SecurePolicy

READ = "campaigns:read"
WRITE = "campaigns:write"
SEND = "campaigns:send"


def _error(error: Exception) -> Response:
    if isinstance(error, templating.TemplateError):
        return Response(
            {"detail": str(error), "part": error.part, "line": error.lineno},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(error, services.ApprovalForbidden):
        return Response(
            {"detail": str(error), "code": "approval-forbidden"}, status=status.HTTP_403_FORBIDDEN
        )
    if isinstance(error, services.ApprovalRequired):
        return Response(
            {"detail": str(error), "code": "approval-required"}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(error, services.LockedFooterMissing):
        return Response({"detail": str(error), "code": error.code}, status=status.HTTP_409_CONFLICT)
    if isinstance(error, services.PresendBlocked):
        return Response(
            {"detail": str(error), "code": "presend-check-failed"}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(error, services.TransitionError):
        return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
    if isinstance(error, services.CampaignError):
        return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
    raise error


# --- templates ------------------------------------------------------------------------------


class TemplateOut(serializers.ModelSerializer):
    class Meta:
        model = EmailTemplate
        fields = ["id", "uuid", "name", "subject", "html", "text", "phi_bearing",
                  "has_locked_footer", "version", "created_at", "updated_at"]  # fmt: skip


class TemplateIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    subject = serializers.CharField(max_length=998)
    html = serializers.CharField()
    text = serializers.CharField(required=False, allow_blank=True, default="")


class TemplateListCreateApi(generics.GenericAPIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = TemplateOut

    def get_queryset(self) -> Any:
        return EmailTemplate.objects.order_by("-id")

    @extend_schema(operation_id="templates_list", responses=TemplateOut(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TemplateOut(page, many=True).data)

    @extend_schema(request=TemplateIn, responses={201: TemplateOut})
    def post(self, request: Request) -> Response:
        data = TemplateIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            template = services.template_create(
                actor=request.user, request=request, **data.validated_data
            )
        except (templating.TemplateError, services.CampaignError) as error:
            return _error(error)
        return Response(TemplateOut(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailApi(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    @extend_schema(responses=TemplateOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(TemplateOut(get_object_or_404(EmailTemplate, pk=pk)).data)

    @extend_schema(request=TemplateIn(partial=True), responses=TemplateOut)
    def patch(self, request: Request, pk: int) -> Response:
        template = get_object_or_404(EmailTemplate, pk=pk)
        data = TemplateIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            template = services.template_update(
                template=template, actor=request.user, request=request, **data.validated_data
            )
        except (templating.TemplateError, services.CampaignError) as error:
            return _error(error)
        return Response(TemplateOut(template).data)


class TemplatePreviewApi(APIView):
    """Render a template with sample data (no PHI) or, for PHI roles, a real contact."""

    required_scopes = READ

    @extend_schema(
        request=inline_serializer(
            "PreviewIn", {"contact_id": serializers.IntegerField(required=False)}
        ),
        responses=inline_serializer(
            "PreviewOut",
            {
                "subject": serializers.CharField(),
                "html": serializers.CharField(),
                "text": serializers.CharField(),
            },
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        template = get_object_or_404(EmailTemplate, pk=pk)
        contact_id = request.data.get("contact_id")
        try:
            rendered = services.template_preview(
                subject=template.subject,
                html=template.html,
                text=template.text,
                actor=request.user,
                contact_id=int(contact_id) if contact_id else None,
                request=request,
            )
        except (templating.TemplateError, services.CampaignError) as error:
            return _error(error)
        return Response({"subject": rendered.subject, "html": rendered.html, "text": rendered.text})


# --- sender identities -----------------------------------------------------------------------


class SenderOut(serializers.ModelSerializer):
    dkim_dns_record = serializers.SerializerMethodField()

    class Meta:
        model = SenderIdentity
        fields = ["id", "uuid", "name", "from_name", "from_email", "reply_to", "postal_address",
                  "dkim_domain", "dkim_selector", "dkim_algorithm", "dkim_dns_record",
                  "bounce_domain", "allow_without_dkim", "created_at"]  # fmt: skip

    def get_dkim_dns_record(self, sender: SenderIdentity) -> dict[str, str] | None:
        return selectors.dkim_dns_record(sender)


class SenderIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    from_name = serializers.CharField(max_length=200)
    from_email = serializers.EmailField()
    reply_to = serializers.EmailField(required=False, allow_blank=True, default="")
    postal_address = serializers.CharField(required=False, allow_blank=True, default="")
    dkim_domain = serializers.CharField(required=False, allow_blank=True, default="")
    dkim_selector = serializers.CharField(required=False, allow_blank=True, default="")
    dkim_algorithm = serializers.ChoiceField(DkimAlgorithm.choices, default=DkimAlgorithm.RSA)
    generate_dkim = serializers.BooleanField(default=True)
    bounce_domain = serializers.CharField(required=False, allow_blank=True, default="")


class SenderListCreateApi(generics.GenericAPIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = SenderOut

    def get_queryset(self) -> Any:
        return SenderIdentity.objects.order_by("-id")

    @extend_schema(operation_id="senders_list", responses=SenderOut(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SenderOut(page, many=True).data)

    @extend_schema(request=SenderIn, responses={201: SenderOut})
    def post(self, request: Request) -> Response:
        data = SenderIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            sender = services.sender_create(
                actor=request.user, request=request, **data.validated_data
            )
        except services.CampaignError as error:
            return _error(error)
        return Response(SenderOut(sender).data, status=status.HTTP_201_CREATED)


class SenderDetailApi(APIView):
    required_scopes = READ

    @extend_schema(responses=SenderOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(SenderOut(get_object_or_404(SenderIdentity, pk=pk)).data)


class SenderAllowWithoutDkimApi(APIView):
    """Admins only (checked by the service): allow sends without a DKIM key."""

    required_scopes = WRITE

    @extend_schema(
        request=inline_serializer("AllowIn", {"allow": serializers.BooleanField()}),
        responses=SenderOut,
    )
    def post(self, request: Request, pk: int) -> Response:
        sender = get_object_or_404(SenderIdentity, pk=pk)
        try:
            sender = services.sender_allow_without_dkim(
                sender=sender,
                allow=bool(request.data.get("allow")),
                actor=request.user,
                request=request,
            )
        except services.CampaignError as error:
            return Response({"detail": str(error)}, status=status.HTTP_403_FORBIDDEN)
        return Response(SenderOut(sender).data)


# --- campaigns -------------------------------------------------------------------------------


class CampaignOut(serializers.ModelSerializer):
    segments: Any = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    lists: Any = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    exclude_segments: Any = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    exclude_lists: Any = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "uuid", "name", "marketing_id", "report_field", "template", "sender",
                  "segments", "lists", "exclude_segments", "exclude_lists", "scheduled_at",
                  "throttle_per_minute", "track_opens", "track_clicks", "secure_policy",
                  "status", "auto_pause_reason", "auto_paused_at", "recipients", "started_at",
                  "finished_at", "created_at"]  # fmt: skip


class CampaignIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    marketing_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    report_field = serializers.CharField(max_length=200, required=False, allow_blank=True)
    template = serializers.PrimaryKeyRelatedField(
        queryset=EmailTemplate.objects.all(), required=False, allow_null=True
    )
    sender = serializers.PrimaryKeyRelatedField(
        queryset=SenderIdentity.objects.all(), required=False, allow_null=True
    )
    segments = serializers.PrimaryKeyRelatedField(
        queryset=Segment.objects.all(), many=True, required=False
    )
    lists = serializers.PrimaryKeyRelatedField(
        queryset=ContactList.objects.all(), many=True, required=False
    )
    exclude_segments = serializers.PrimaryKeyRelatedField(
        queryset=Segment.objects.all(), many=True, required=False
    )
    exclude_lists = serializers.PrimaryKeyRelatedField(
        queryset=ContactList.objects.all(), many=True, required=False
    )
    throttle_per_minute = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    track_opens = serializers.BooleanField(required=False)
    track_clicks = serializers.BooleanField(required=False)
    secure_policy = serializers.ChoiceField(SecurePolicy.choices, required=False)


class CampaignListCreateApi(generics.GenericAPIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = CampaignOut

    def get_queryset(self) -> Any:
        # Journey steps and transactional messages have their own endpoints.
        visible = Campaign.objects.filter(transactional=False, journey_step__isnull=True)
        return visible.order_by("-id").prefetch_related(
            "segments", "lists", "exclude_segments", "exclude_lists"
        )

    @extend_schema(operation_id="campaigns_list", responses=CampaignOut(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CampaignOut(page, many=True).data)

    @extend_schema(request=CampaignIn, responses={201: CampaignOut})
    def post(self, request: Request) -> Response:
        data = CampaignIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            campaign = services.campaign_create(
                actor=request.user, request=request, **data.validated_data
            )
        except services.CampaignError as error:
            return _error(error)
        return Response(CampaignOut(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    @extend_schema(responses=CampaignOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(CampaignOut(get_object_or_404(Campaign, pk=pk)).data)

    @extend_schema(request=CampaignIn(partial=True), responses=CampaignOut)
    def patch(self, request: Request, pk: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=pk)
        data = CampaignIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            campaign = services.campaign_update(
                campaign=campaign, actor=request.user, request=request, **data.validated_data
            )
        except services.CampaignError as error:
            return _error(error)
        return Response(CampaignOut(campaign).data)


ProgressOut = inline_serializer(
    "CampaignProgress",
    {
        "status": serializers.CharField(),
        "total": serializers.IntegerField(),
        "sent": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
        "unknown": serializers.IntegerField(),
        "skipped": serializers.IntegerField(),
        "remaining": serializers.IntegerField(),
        "rate_per_minute": serializers.IntegerField(),
        "percent": serializers.IntegerField(),
        "counts": serializers.DictField(child=serializers.IntegerField()),
    },
)


class CampaignStatusApi(APIView):
    """Progress counts: sent / failed / unknown / remaining and the current rate."""

    required_scopes = READ

    @extend_schema(responses=ProgressOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(selectors.campaign_progress(get_object_or_404(Campaign, pk=pk)))


class _CampaignAction(APIView):
    required_scopes = SEND
    action = ""

    def perform(self, request: Request, campaign: Campaign) -> Any:
        raise NotImplementedError

    @extend_schema(request=None, responses=CampaignOut)
    def post(self, request: Request, pk: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            self.perform(request, campaign)
        except services.CampaignError as error:
            return _error(error)
        campaign.refresh_from_db()
        return Response(CampaignOut(campaign).data)


class CampaignScheduleApi(_CampaignAction):
    """Send now (no ``at``) or at a time (ISO 8601 ``at``)."""

    @extend_schema(
        request=inline_serializer("ScheduleIn", {"at": serializers.DateTimeField(required=False)}),
        responses=CampaignOut,
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, campaign: Campaign) -> Any:
        data = serializers.DateTimeField(required=False, allow_null=True)
        at = data.to_internal_value(request.data["at"]) if request.data.get("at") else None
        services.presend_require(campaign=campaign)
        return services.campaign_schedule(
            campaign=campaign, actor=request.user, at=at, request=request
        )


class CampaignPauseApi(_CampaignAction):
    def perform(self, request: Request, campaign: Campaign) -> Any:
        return services.campaign_pause(campaign=campaign, actor=request.user, request=request)


class CampaignResumeApi(_CampaignAction):
    """Resume a paused campaign; one that paused itself (``auto_pause_reason``) needs
    ``{"confirm": true}``."""

    @extend_schema(
        request=inline_serializer(
            "ResumeIn", {"confirm": serializers.BooleanField(required=False)}
        ),
        responses=CampaignOut,
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, campaign: Campaign) -> Any:
        data: Any = request.data
        confirm = bool(data.get("confirm") is True) if hasattr(data, "get") else False
        return services.campaign_resume(
            campaign=campaign, actor=request.user, request=request, confirm=confirm
        )


class CampaignCancelApi(_CampaignAction):
    def perform(self, request: Request, campaign: Campaign) -> Any:
        return services.campaign_cancel(campaign=campaign, actor=request.user, request=request)


class CampaignTestSendApi(APIView):
    """Send the current template, with sample data, to up to 10 seed addresses."""

    required_scopes = SEND

    @extend_schema(
        request=inline_serializer(
            "TestSendIn", {"addresses": serializers.ListField(child=serializers.EmailField())}
        ),
        responses=inline_serializer("TestSendOut", {"accepted": serializers.IntegerField()}),
    )
    def post(self, request: Request, pk: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=pk)
        addresses = request.data.get("addresses") or []
        if not isinstance(addresses, list):
            return Response({"detail": "addresses must be a list."}, status=400)
        try:
            accepted = services.campaign_test_send(
                campaign=campaign,
                addresses=[str(a) for a in addresses],
                actor=request.user,
                request=request,
            )
        except services.CampaignError as error:
            return _error(error)
        return Response({"accepted": accepted})


class CampaignMessageOut(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "campaign", "contact", "state", "attempts", "smtp_code", "smtp_reply",
                  "channel", "channel_reason", "queued_at", "sending_at",
                  "finished_at"]  # fmt: skip


class CampaignUnknownMessagesApi(generics.GenericAPIView):
    """Messages whose outcome is unknown (a worker died mid-send): decide, then resend."""

    required_scopes = READ
    serializer_class = CampaignMessageOut

    def get(self, request: Request, pk: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=pk)
        page = self.paginate_queryset(selectors.unknown_messages(campaign))
        return self.get_paginated_response(CampaignMessageOut(page, many=True).data)


class MessageResendApi(APIView):
    required_scopes = SEND

    @extend_schema(request=None, responses=CampaignMessageOut)
    def post(self, request: Request, pk: int) -> Response:
        message = get_object_or_404(Message, pk=pk)
        try:
            message = services.message_resend(message=message, actor=request.user, request=request)
        except services.CampaignError as error:
            return _error(error)
        return Response(CampaignMessageOut(message).data)


# --- bounces ---------------------------------------------------------------------------------


class RawMessageParser(BaseParser):
    media_type = "message/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream.read(bounces.MAX_REPORT_BYTES + 1)


class BounceReportApi(APIView):
    """Submit one mail sent back (DSN, ARF, auth-failure or DMARC report, …) as
    ``message/rfc822`` (raw bytes) or JSON ``{"document": "<the raw message>"}``. Mail the
    parser cannot read is kept for reprocessing (``unparsed``); only non-mail is a 400."""

    required_scopes = "bounces:write"
    # A report may be MAX_REPORT_BYTES, more once escaped in JSON (docs/api.md "Body limits").
    max_body_bytes = 3 * bounces.MAX_REPORT_BYTES

    def get_parsers(self) -> list[Any]:
        return [RawMessageParser(), *super().get_parsers()]

    @extend_schema(
        request={"message/rfc822": bytes},
        responses=inline_serializer(
            "BounceOut",
            {
                "events": serializers.IntegerField(),
                "suppressed": serializers.IntegerField(),
                "unmatched": serializers.IntegerField(),
                "unparsed": serializers.IntegerField(),
                "sender_events": serializers.IntegerField(),
                "ignored": serializers.IntegerField(),
                "kind": serializers.CharField(),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        data: Any = request.data
        raw: Any = data
        if hasattr(data, "get"):
            document = data.get("document", "")
            raw = document.encode() if isinstance(document, str) else b""
        if not isinstance(raw, bytes) or not raw:
            return Response({"detail": "Send the report document."}, status=400)
        try:
            outcome = bounces.bounce_process(
                raw=raw, source="api", actor=request.user, request=request
            )
        except bounces.BounceError as error:
            return Response({"detail": str(error)}, status=400)
        return Response(
            {
                "events": outcome.events,
                "suppressed": outcome.suppressed,
                "unmatched": outcome.unmatched,
                "unparsed": outcome.unparsed,
                "sender_events": outcome.sender_events,
                "ignored": outcome.ignored,
                "kind": str(outcome.kind),
            }
        )
