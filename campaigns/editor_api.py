"""Saved editor blocks API (``/api/v1/editor-blocks/``): what the visual editor loads.

Reading needs ``campaigns:read``, saving and deleting ``campaigns:write``. Blocks hold
template HTML (no PHI: they are design, validated like templates).
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import services
from campaigns.content import editor, templating
from campaigns.models import EditorBlock

READ = "campaigns:read"
WRITE = "campaigns:write"


class EditorBlockOut(serializers.ModelSerializer):
    class Meta:
        model = EditorBlock
        fields = ["id", "uuid", "name", "html", "created_at"]


class EditorBlockIn(serializers.Serializer):
    name = serializers.CharField(max_length=editor.MAX_BLOCK_NAME)
    html = serializers.CharField(max_length=editor.MAX_BLOCK_BYTES, trim_whitespace=False)


def _problem(error: Exception) -> Response:
    return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)


class EditorBlockListCreateApi(generics.GenericAPIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = EditorBlockOut

    def get_queryset(self) -> Any:
        return EditorBlock.objects.order_by("name", "id")

    @extend_schema(operation_id="editor_blocks_list", responses=EditorBlockOut(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EditorBlockOut(page, many=True).data)

    @extend_schema(request=EditorBlockIn, responses={201: EditorBlockOut})
    def post(self, request: Request) -> Response:
        data = EditorBlockIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            block = services.editor_block_create(
                actor=request.user, request=request, **data.validated_data
            )
        except (templating.TemplateError, services.CampaignError) as error:
            return _problem(error)
        return Response(EditorBlockOut(block).data, status=status.HTTP_201_CREATED)


class EditorBlockDetailApi(APIView):
    required_scopes = {"DELETE": WRITE}

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        block = get_object_or_404(EditorBlock, pk=pk)
        services.editor_block_delete(block=block, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
