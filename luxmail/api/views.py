from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from luxmail.api.permissions import request_scopes


class ApiDocsView(SpectacularSwaggerView):
    """``/api/docs/``: Swagger UI served from ``static/vendor`` and started by a static
    script (``static/js/api-docs.js``), so it runs under the site's CSP — no CDN, no
    inline script or style (drf-spectacular's own template has both)."""

    template_name = "api/docs.html"


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
