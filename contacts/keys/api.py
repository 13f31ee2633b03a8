"""``/api/v1/contacts/{id}/keys/``: a contact's S/MIME certificate and OpenPGP key.

Listing (fingerprints, dates, status — never the material) needs ``contacts:read``.
Adding or removing needs ``contacts:write`` and ``phi:write``: the key names the
person and is matched against their address. Errors carry a stable ``code``.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.keys import selectors, services
from contacts.models import Contact, ContactEncryptionKey, EncryptionKeyKind
from luxmail.api.permissions import has_scope

READ = "contacts:read"
WRITE = "contacts:write"
PHI_WRITE = "phi:write"


class KeyOut(serializers.ModelSerializer):
    class Meta:
        model = ContactEncryptionKey
        fields = ["uuid", "kind", "fingerprint", "serial_number", "algorithm", "not_after",
                  "validated_at", "created_at", "revoked_at", "revoked_reason"]  # fmt: skip


class KeyIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EncryptionKeyKind.choices)
    key = serializers.CharField(
        max_length=400_000,
        trim_whitespace=False,
        help_text="ASCII-armored OpenPGP public key, or PEM certificate (chain allowed).",
    )


KEY_ERROR = inline_serializer(
    "ContactKeyError", {"detail": serializers.CharField(), "code": serializers.CharField()}
)


def _needs_phi_write(request: Request) -> Response | None:
    if has_scope(request, PHI_WRITE):
        return None
    return Response(
        {"detail": "Keys name the person: this needs the 'phi:write' scope.", "code": "scope"},
        status=status.HTTP_403_FORBIDDEN,
    )


class ContactKeysApi(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(responses={200: KeyOut(many=True)})
    def get(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        return Response(KeyOut(selectors.contact_keys(contact=contact), many=True).data)

    @extend_schema(request=KeyIn, responses={201: KeyOut, 400: KEY_ERROR})
    def post(self, request: Request, pk: int) -> Response:
        refused = _needs_phi_write(request)
        if refused is not None:
            return refused
        contact = get_object_or_404(Contact, pk=pk)
        data = KeyIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            key = services.contact_key_upload(
                contact=contact,
                kind=data.validated_data["kind"],
                data=data.validated_data["key"],
                actor=request.user,
                request=request._request,
                source="api",
            )
        except services.KeyMaterialError as error:
            return Response(
                {"detail": error.message, "code": error.code}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response(KeyOut(key).data, status=status.HTTP_201_CREATED)


class ContactKeyApi(APIView):
    required_scopes = WRITE

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, key_uuid: Any) -> Response:
        refused = _needs_phi_write(request)
        if refused is not None:
            return refused
        key = get_object_or_404(ContactEncryptionKey, uuid=key_uuid, contact_id=pk)
        services.contact_key_remove(key=key, actor=request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
