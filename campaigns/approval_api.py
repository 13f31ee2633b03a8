"""PHI approval through the API (``/api/v1/campaigns/<id>/approval/``, issue 17).

``GET`` shows what an approval covers and its state; ``POST`` asks for approval
(``campaigns:write``); ``POST …/approval/decision/`` approves or rejects — only a
Compliance Officer's verified staff session may decide, never an API key (403).
Scheduling a PHI campaign without a current approval answers 409 with the problem
code ``approval-required`` (``campaigns/api.py``).
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api import READ, WRITE, _error
from campaigns.models import Campaign
from campaigns.services import approvals

ApprovalOut = inline_serializer(
    "ApprovalOut",
    {
        "needs_approval": serializers.BooleanField(),
        "state": serializers.CharField(allow_null=True),
        "current": serializers.BooleanField(),
        "template_phi_fields": serializers.ListField(child=serializers.CharField()),
        "audience_phi_fields": serializers.ListField(child=serializers.CharField()),
        "secure_policy": serializers.CharField(),
        "recipients": serializers.IntegerField(),
        "requested_at": serializers.DateTimeField(allow_null=True),
        "decided_at": serializers.DateTimeField(allow_null=True),
        "withdrawn_reason": serializers.CharField(),
    },
)


def _out(campaign: Campaign) -> dict[str, Any]:
    overview = approvals.approval_overview(campaign)
    approval = overview.approval
    return {
        "needs_approval": overview.use.needs_approval,
        "state": approval.state if approval else None,
        "current": overview.current,
        "template_phi_fields": overview.use.template_fields,
        "audience_phi_fields": overview.use.audience_fields,
        "secure_policy": campaign.secure_policy,
        "recipients": overview.recipients,
        "requested_at": approval.requested_at.isoformat() if approval else None,
        "decided_at": approval.decided_at.isoformat() if approval and approval.decided_at else None,
        "withdrawn_reason": approval.withdrawn_reason if approval else "",
    }


class CampaignApprovalApi(APIView):
    """The campaign's PHI approval: what it covers and its state; POST requests it."""

    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(responses=ApprovalOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_out(get_object_or_404(Campaign, pk=pk)))

    @extend_schema(request=None, responses=ApprovalOut)
    def post(self, request: Request, pk: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            approvals.approval_request(campaign=campaign, actor=request.user, request=request)
        except approvals.CampaignError as error:
            return _error(error)
        return Response(_out(campaign), status=201)


class CampaignApprovalDecisionApi(APIView):
    """Approve or reject (a Compliance Officer's session; the service checks the role)."""

    required_scopes = READ

    @extend_schema(
        request=inline_serializer(
            "ApprovalDecisionIn",
            {
                "approve": serializers.BooleanField(),
                "note": serializers.CharField(required=False, allow_blank=True, max_length=500),
            },
        ),
        responses=ApprovalOut,
    )
    def post(self, request: Request, pk: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=pk)
        data = serializers.BooleanField().to_internal_value(request.data.get("approve", ""))
        note = str(request.data.get("note") or "")[:500]
        try:
            approvals.approval_decide(
                campaign=campaign, actor=request.user, approve=data, note=note, request=request
            )
        except approvals.CampaignError as error:
            return _error(error)
        return Response(_out(campaign))
