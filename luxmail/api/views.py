from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from luxmail.api.permissions import request_scopes


class ApiRootView(APIView):
    """Entry point of the versioned API."""

    required_scopes = None

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {
                "version": serializers.CharField(),
                "docs": serializers.CharField(),
                "schema": serializers.CharField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response({"version": "1", "docs": "/api/docs/", "schema": "/api/schema/"})


class WhoAmIView(APIView):
    """The caller's identity and scopes (useful to check a new API key)."""

    required_scopes = None

    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            {
                "principal": serializers.CharField(),
                "scopes": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response({"principal": str(request.user), "scopes": sorted(request_scopes(request))})
