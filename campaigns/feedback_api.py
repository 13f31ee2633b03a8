"""Feedback API (``/api/v1/``): bounce and complaint lists, sender health, sender-side
evidence, unread mail and its reprocessing, the suppression/auto-pause policy.

Un-suppressing is contacts' ``POST /api/v1/suppressions/{id}/remove/`` (a note is
required and audited). See docs/api.md "Bounces, complaints and sender health".
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import services
from campaigns.models import BounceEvent, BounceKind, SenderEvent, UnparsedFeedback
from campaigns.sending import health, policy
from luxmail.api.pagination import CursorPagination

READ = "campaigns:read"
OPERATE = "bounces:write"


def _int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class BounceEventOut(serializers.ModelSerializer):
    message = serializers.IntegerField(source="message_id", allow_null=True)
    contact = serializers.IntegerField(source="contact_id", allow_null=True)
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    sender = serializers.IntegerField(source="sender_id", allow_null=True)

    class Meta:
        model = BounceEvent
        fields = ["id", "message", "contact", "campaign", "sender", "sending_domain", "kind",
                  "status", "reason", "scope", "rule", "provider", "feedback_format",
                  "recipient_domain", "recipient_hash", "diagnostic", "source", "suppressed",
                  "received_at"]  # fmt: skip


class BounceEventListApi(generics.ListAPIView):
    """Bounces and complaints, newest first. Filters: ``kind`` (hard, soft, complaint),
    ``reason``, ``provider``, ``campaign``, ``sender`` (identity id), ``contact``."""

    required_scopes = READ
    serializer_class = BounceEventOut
    pagination_class = CursorPagination
    kind = ""

    def get_queryset(self) -> Any:
        params = self.request.query_params
        kind = self.kind or params.get("kind", "")
        return health.bounce_events(
            kind=kind if kind in BounceKind.values else "",
            reason=params.get("reason", "")[:32],
            provider=params.get("provider", "")[:253],
            campaign_id=_int(params.get("campaign")),
            sender_id=_int(params.get("sender")),
            contact_id=_int(params.get("contact")),
        )


class ComplaintListApi(BounceEventListApi):
    """Complaints only (ARF abuse reports); same filters as bounce events."""

    kind = BounceKind.COMPLAINT


class SenderEventOut(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    sender = serializers.IntegerField(source="sender_id", allow_null=True)

    class Meta:
        model = SenderEvent
        fields = ["id", "kind", "sender", "sending_domain", "campaign", "provider", "reason",
                  "status", "rule", "detail", "source", "received_at"]  # fmt: skip


class SenderEventListApi(generics.ListAPIView):
    """Sender-health evidence: sender-side refusals (``block``), RFC 6591
    authentication-failure reports, DMARC aggregate reports. Filters: ``kind``,
    ``provider``, ``sender``."""

    required_scopes = READ
    serializer_class = SenderEventOut
    pagination_class = CursorPagination

    def get_queryset(self) -> Any:
        params = self.request.query_params
        return health.sender_events(
            kind=params.get("kind", "")[:24],
            provider=params.get("provider", "")[:253],
            sender_id=_int(params.get("sender")),
        )


def _health(item: health.Health) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "key": item.key,
        "label": item.label,
        "badge": item.badge,
        "badge_why": item.badge_why,
        "messages": item.attempted,
        "hard_bounces": item.hard,
        "soft_bounces": item.soft,
        "complaints": item.complaints,
        "hard_bounce_percent": str(item.hard_percent),
        "complaint_percent": str(item.complaint_percent),
        "auth_failure_reports": item.auth_reports,
        "top_reasons": [{"reason": r, "count": n} for r, n in item.top_reasons],
        "blocks_by_provider_7d": [{"provider": p, "count": n} for p, n in item.blocks_by_provider],
        "daily": [{**d, "day": d["day"].isoformat()} for d in item.daily],
    }


class SenderHealthApi(APIView):
    """Health per sender identity and per sending domain (``?days=``, default 30)."""

    required_scopes = READ

    @extend_schema(
        responses=inline_serializer(
            "SenderHealth", {"items": serializers.ListField(child=serializers.DictField())}
        )
    )
    def get(self, request: Request) -> Response:
        days = min(_int(request.query_params.get("days")) or 30, 365)
        return Response(
            {"days": days, "items": [_health(i) for i in health.sender_health(days=days)]}
        )


class UnparsedOut(serializers.ModelSerializer):
    class Meta:
        model = UnparsedFeedback
        fields = ["id", "uuid", "size", "source", "received_count", "first_received_at",
                  "last_received_at", "state", "attempts", "last_attempt_at",
                  "outcome"]  # fmt: skip


class UnparsedListApi(generics.ListAPIView):
    """Mail the parser could not read (kept encrypted; never the body). ``?state=``."""

    required_scopes = OPERATE
    serializer_class = UnparsedOut
    pagination_class = CursorPagination

    def get_queryset(self) -> Any:
        items = UnparsedFeedback.objects.all()
        state = self.request.query_params.get("state", "")
        return items.filter(state=state[:12]) if state else items


class UnparsedReprocessApi(APIView):
    """Read one kept mail again with the current parser (a PHI access, audited)."""

    required_scopes = OPERATE

    @extend_schema(request=None, responses=UnparsedOut)
    def post(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(UnparsedFeedback, pk=pk)
        outcome = services.unparsed_reprocess(item=item, actor=request.user, request=request)
        if outcome is None:
            return Response({"detail": "This mail was already reprocessed."}, status=409)
        item.refresh_from_db()
        return Response(UnparsedOut(item).data)


class PolicyIn(serializers.Serializer):
    soft_bounce_limit = serializers.IntegerField(required=False)
    soft_bounce_days = serializers.IntegerField(required=False)
    reason_actions = serializers.DictField(child=serializers.CharField(), required=False)
    autopause_min_messages = serializers.IntegerField(required=False)
    autopause_hard_bounce_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False
    )
    autopause_complaint_percent = serializers.DecimalField(
        max_digits=5, decimal_places=3, required=False
    )
    autopause_provider_blocks = serializers.IntegerField(required=False)


def _policy_out() -> dict[str, Any]:
    row = policy.current()
    return {
        "soft_bounce_limit": row.soft_bounce_limit,
        "soft_bounce_days": row.soft_bounce_days,
        "autopause_min_messages": row.autopause_min_messages,
        "autopause_hard_bounce_percent": str(row.autopause_hard_bounce_percent),
        "autopause_complaint_percent": str(row.autopause_complaint_percent),
        "autopause_provider_blocks": row.autopause_provider_blocks,
        "reasons": policy.table(row),
    }


class FeedbackPolicyApi(APIView):
    """The suppression policy by reason and the auto-pause thresholds."""

    required_scopes = {"GET": READ, "PATCH": OPERATE}

    @extend_schema(
        responses=inline_serializer("FeedbackPolicy", {"reasons": serializers.ListField()})
    )
    def get(self, request: Request) -> Response:
        return Response(_policy_out())

    @extend_schema(request=PolicyIn, responses=inline_serializer("FeedbackPolicyOut", {}))
    def patch(self, request: Request) -> Response:
        data = PolicyIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.feedback_policy_update(
                actor=request.user, request=request, **data.validated_data
            )
        except services.FeedbackPolicyError as error:
            return Response({"detail": str(error)}, status=400)
        return Response(_policy_out())
