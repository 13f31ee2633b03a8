"""``POST /api/v1/messages/`` and ``GET /api/v1/messages/{id}/``: one message to one
contact through the full secure pipeline (``campaigns/transactional/send.py``).

Sending needs ``campaigns:send``; raw content (instead of a stored template) also needs
``campaigns:write``, because it is stored like a template: patient data belongs in
placeholders (``{{ phi.next_appointment }}``) filled from the contact's encrypted
profile at send time, never typed into the content. Responses carry ids, states and
channels only — no PHI, no address.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.content import templating
from campaigns.models import EmailTemplate, Message, SenderIdentity
from campaigns.sending import hooks
from campaigns.services import CampaignError
from campaigns.transactional import send as transactional
from contacts.models import Contact
from contacts.selectors import contact_by_email
from luxmail.api.permissions import has_scope
from luxmail.models import SecurePolicy

SEND = "campaigns:send"
READ = "campaigns:read"
WRITE = "campaigns:write"


class MessageIn(serializers.Serializer):
    contact = serializers.CharField(
        required=False, help_text="The contact's id or UUID (as the contacts API returns them)."
    )
    email = serializers.EmailField(
        required=False, help_text="Or the contact's address (looked up by its blind index)."
    )
    sender = serializers.IntegerField(help_text="Sender identity id.")
    template = serializers.IntegerField(required=False, help_text="Stored template id.")
    subject = serializers.CharField(required=False, allow_blank=True, max_length=998)
    html = serializers.CharField(required=False, allow_blank=True)
    text = serializers.CharField(required=False, allow_blank=True)
    secure_policy = serializers.ChoiceField(
        choices=SecurePolicy.choices, required=False, help_text="Default: the org's."
    )
    track_opens = serializers.BooleanField(default=False)
    track_clicks = serializers.BooleanField(default=False)
    encrypted_subject_visible = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("contact")) == bool(attrs.get("email")):
            raise serializers.ValidationError("Give exactly one of contact (UUID) or email.")
        raw = any(attrs.get(name) for name in ("subject", "html", "text"))
        if attrs.get("template") is not None and raw:
            raise serializers.ValidationError("Give either a template or subject and html.")
        if attrs.get("template") is None and not (attrs.get("subject") and attrs.get("html")):
            raise serializers.ValidationError("Give a template, or a subject and html.")
        return attrs


class PortalOut(serializers.Serializer):
    state = serializers.CharField()
    expires_at = serializers.DateTimeField()
    first_read_at = serializers.DateTimeField(allow_null=True)
    replies = serializers.IntegerField()


class MessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    channel = serializers.CharField()
    channel_reason = serializers.CharField()
    attempts = serializers.IntegerField()
    smtp_code = serializers.IntegerField(allow_null=True)
    queued_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    campaign_id = serializers.IntegerField()
    transactional = serializers.BooleanField()
    portal = PortalOut(allow_null=True)


def _out(message: Message) -> dict[str, Any]:
    portal = hooks.portal().status(message) if hooks.portal_installed() else None
    return {
        "id": message.pk,
        "state": message.state,
        "channel": message.channel,
        "channel_reason": message.channel_reason,
        "attempts": message.attempts,
        "smtp_code": message.smtp_code,
        "queued_at": message.queued_at,
        "finished_at": message.finished_at,
        "campaign_id": message.campaign_id,
        "transactional": message.campaign.transactional,
        "portal": portal,
    }


def _contact(reference: str) -> Contact:

    if reference.isdigit():
        return get_object_or_404(Contact, pk=int(reference))
    try:
        return get_object_or_404(Contact, uuid=uuid.UUID(reference))
    except ValueError:
        raise Http404("No contact matches this id.") from None


class MessageSendApi(APIView):
    """Send one message to one contact now (appointment reminders, notices)."""

    required_scopes = SEND

    @extend_schema(
        request=MessageIn,
        responses={
            202: MessageOut,
            400: inline_serializer("MessageSendError", {"detail": serializers.CharField()}),
        },
    )
    def post(self, request: Request) -> Response:
        data = MessageIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        raw = values.get("template") is None
        if raw and not has_scope(request, WRITE):
            return Response(
                {"detail": "Raw content needs the 'campaigns:write' scope (or use a template)."},
                status=status.HTTP_403_FORBIDDEN,
            )
        if values.get("contact"):
            contact = _contact(str(values["contact"]))
        else:
            found = contact_by_email(email=values["email"])
            if found is None:
                return Response(
                    {"detail": "No contact has this address."}, status=status.HTTP_404_NOT_FOUND
                )
            contact = found
        sender = get_object_or_404(SenderIdentity, pk=values["sender"])
        template = None if raw else get_object_or_404(EmailTemplate, pk=values["template"])
        try:
            message = transactional.message_send(
                contact=contact,
                sender=sender,
                template=template,
                subject=values.get("subject", ""),
                html=values.get("html", ""),
                text=values.get("text", ""),
                secure_policy=values.get("secure_policy", ""),
                track_opens=values["track_opens"],
                track_clicks=values["track_clicks"],
                encrypted_subject_visible=values["encrypted_subject_visible"],
                actor=request.user,
                request=request._request,
            )
        except templating.TemplateError as error:
            return Response(
                {"detail": str(error), "part": error.part, "line": error.lineno},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except CampaignError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(MessageOut(_out(message)).data, status=status.HTTP_202_ACCEPTED)


class MessageStatusApi(APIView):
    """Where one message is: state, channel (and why), portal state when it went there."""

    required_scopes = READ

    @extend_schema(responses={200: MessageOut})
    def get(self, request: Request, pk: int) -> Response:
        message = get_object_or_404(Message.objects.select_related("campaign"), pk=pk)
        return Response(MessageOut(_out(message)).data)
