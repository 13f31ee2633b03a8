"""``GET /api/v1/contacts/{id}/consent-ledger/`` (issue 18): a contact's consent ledger.

Every grant, confirmation, revocation, unsubscribe, resubscribe and preference change,
newest first. The evidence (IP, user agent, typed signature, staff note) is PHI: it is
included, decrypted and audited, only for callers holding ``phi:read``.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import signup_selectors
from contacts.models import Contact
from luxmail.api.permissions import has_scope

READ = "contacts:read"
PHI_READ = "phi:read"

LedgerEntrySerializer = inline_serializer(
    "ConsentLedgerEntry",
    {
        "id": serializers.IntegerField(),
        "kind": serializers.CharField(),
        "purpose": serializers.CharField(),
        "occurred_at": serializers.DateTimeField(),
        "actor": serializers.CharField(),
        "source": serializers.CharField(),
        "form": serializers.CharField(),
        "authorization": serializers.CharField(),
        "evidence": serializers.DictField(help_text="Empty without phi:read."),
    },
)


class ConsentLedgerApi(APIView):
    """The consent ledger of one contact (at most the newest 500 entries)."""

    required_scopes = READ

    @extend_schema(responses=inline_serializer("ConsentLedger", {"results": LedgerEntrySerializer}))
    def get(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        actor = request.user
        rows = signup_selectors.consent_ledger(
            contact=contact,
            actor=actor,
            request=request._request,
            reveal=has_scope(request, PHI_READ),
        )
        return Response(
            {
                "results": [
                    {
                        "id": row.id,
                        "kind": row.kind,
                        "purpose": row.purpose,
                        "occurred_at": row.occurred_at,
                        "actor": row.actor,
                        "source": row.source,
                        "form": row.form,
                        "authorization": row.authorization,
                        "evidence": row.evidence,
                    }
                    for row in rows
                ]
            }
        )
