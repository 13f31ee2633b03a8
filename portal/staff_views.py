"""Staff pages of the portal (under ``/secure-messages/``, behind the MFA gate).

Lists show ids, states and dates only. Reading a message's content or a reply needs
``luxmail.view_phi`` and is audited; revoking and unlocking need
``campaigns.send_campaign``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal import selectors, services
from portal.models import PortalMessage, PortalReply


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@login_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def index(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    if state not in selectors.STATES:
        state = ""
    rows = selectors.portal_messages(
        campaign_id=_int(request.GET.get("campaign")),
        contact_id=_int(request.GET.get("contact")),
        state=state,
    )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    for item in page:
        item.state = selectors.portal_message_state(item)  # type: ignore[attr-defined]
    return render(
        request,
        "portal/staff/index.html",
        {
            "nav": "portal",
            "page": page,
            "state": state,
            "states": selectors.STATES,
            "campaign": request.GET.get("campaign", ""),
            "contact": request.GET.get("contact", ""),
            "unread": selectors.portal_replies(unread_only=True).count(),
        },
    )


@never_cache
@login_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def detail(request: HttpRequest, uuid: str) -> HttpResponse:
    portal_message = get_object_or_404(
        PortalMessage.objects.select_related("campaign", "sender", "revoked_by"), uuid=uuid
    )
    content = None
    if request.GET.get("show") == "1":
        try:
            content = services.portal_message_reveal(
                portal_message=portal_message, actor=request.user, request=request
            )
        except PermissionError as error:
            messages.error(request, str(error))
    return render(
        request,
        "portal/staff/detail.html",
        {
            "nav": "portal",
            "item": portal_message,
            "state": selectors.portal_message_state(portal_message),
            "replies": portal_message.replies.order_by("created_at"),
            "content": content,
            "can_act": request.user.has_perm("campaigns.send_campaign"),
        },
    )


@require_POST
@login_required
@permission_required("campaigns.send_campaign", raise_exception=True)
def revoke(request: HttpRequest, uuid: str) -> HttpResponse:
    portal_message = get_object_or_404(PortalMessage, uuid=uuid)
    services.portal_message_revoke(
        portal_message=portal_message, actor=request.user, request=request
    )
    messages.success(request, "The message was revoked: its link now shows that it was withdrawn.")
    return redirect("portal:detail", uuid=uuid)


@require_POST
@login_required
@permission_required("campaigns.send_campaign", raise_exception=True)
def unlock(request: HttpRequest, uuid: str) -> HttpResponse:
    portal_message = get_object_or_404(PortalMessage, uuid=uuid)
    services.portal_message_unlock(
        portal_message=portal_message, actor=request.user, request=request
    )
    messages.success(request, "Access was unlocked; the recipient can ask for a new code.")
    return redirect("portal:detail", uuid=uuid)


@login_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def replies(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    page = Paginator(selectors.portal_replies(unread_only=unread_only), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "portal/staff/replies.html",
        {"nav": "portal", "page": page, "unread_only": unread_only},
    )


@never_cache
@login_required
@permission_required("luxmail.view_phi", raise_exception=True)
def reply_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    reply = get_object_or_404(
        PortalReply.objects.select_related("portal_message", "portal_message__campaign"),
        uuid=uuid,
    )
    body = services.portal_reply_reveal(reply=reply, actor=request.user, request=request)
    return render(
        request,
        "portal/staff/reply.html",
        {"nav": "portal", "reply": reply, "body": body, "item": reply.portal_message},
    )
