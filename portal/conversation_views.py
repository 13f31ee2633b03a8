"""Conversation pages: the staff inbox and thread (``/secure-messages/…``) and the
patient's attachment download (``/portal/<token>/attachments/<uuid>/``).

Views parse input, call one service or selector and render. The inbox shows ids, dates
and counts only; the thread reveals content through
:func:`portal.services.conversations.conversation_open` (audited). An upload larger
than the attachment limits is refused from its Content-Length before Django reads the
body, so a hostile client cannot make the server spool gigabytes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from luxmail import conf
from portal import selectors, views
from portal.attachments import MAX_FILES, AttachmentRejected
from portal.models import PortalAttachment, PortalMessage
from portal.services import PortalUnavailable, conversations
from portal.services.config import MAX_REPLY_CHARS

View = Callable[..., HttpResponse]


class AnswerForm(forms.Form):
    body = forms.CharField(
        label="Your answer",
        max_length=MAX_REPLY_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
    )


def _upload_limit() -> int:
    # Every file at its limit, plus room for the form's other fields and multipart headers.
    return MAX_FILES * conf.portal_attachment_max_bytes() + 256 * 1024


def bounded_upload(view: View) -> View:
    """Refuse an oversized body (413) before CSRF or the view parses it, then check CSRF."""
    protected = csrf_protect(view)

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > _upload_limit():
                return render(
                    request,
                    "portal/staff/upload_refused.html",
                    {"limit": conf.portal_attachment_max_bytes(), "files": MAX_FILES},
                    status=413,
                )
        return protected(request, *args, **kwargs)

    return csrf_exempt(wrapped)


@login_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def inbox(request: HttpRequest) -> HttpResponse:
    which = request.GET.get("show", "open")
    if which not in selectors.CONVERSATION_FILTERS:
        which = "open"
    rows = selectors.conversations(which=which, user_id=request.user.pk)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/staff/conversations.html",
        {"nav": "portal", "page": page, "show": which, "filters": selectors.CONVERSATION_FILTERS},
    )


@never_cache
@login_required
@permission_required("luxmail.view_phi", raise_exception=True)
@bounded_upload
def conversation(request: HttpRequest, uuid: str) -> HttpResponse:
    portal_message = get_object_or_404(
        PortalMessage.objects.select_related("campaign", "sender", "assigned_to", "done_by"),
        uuid=uuid,
    )
    form = AnswerForm(request.POST or None)
    status = 200
    if request.method == "POST":
        files = request.FILES.getlist("files")
        if form.is_valid():
            try:
                conversations.conversation_reply_create(
                    portal_message=portal_message,
                    actor=request.user,
                    body=form.cleaned_data["body"],
                    files=[(item.name or "", item.read()) for item in files[: MAX_FILES + 1]],
                    request=request,
                )
            except (AttachmentRejected, conversations.ConversationError, PermissionError) as error:
                form.add_error(None, str(error))
                status = 400
            else:
                messages.success(
                    request, "Your answer is in the portal; the patient was told by e-mail."
                )
                return redirect("portal:conversation", uuid=uuid)
        else:
            status = 400
    thread = conversations.conversation_open(
        portal_message=portal_message, actor=request.user, request=request
    )
    return render(
        request,
        "portal/staff/conversation.html",
        {
            "nav": "portal",
            "item": portal_message,
            "state": selectors.portal_message_state(portal_message),
            "thread": thread,
            "form": form,
            "can_answer": conversations.may_answer(request.user),
            "assignees": selectors.conversation_assignees(),
            "max_bytes": conf.portal_attachment_max_bytes(),
            "max_files": MAX_FILES,
            "scanner": bool(conf.clamav_address()),
        },
        status=status,
    )


@require_POST
@login_required
@permission_required("luxmail.view_phi", raise_exception=True)
def assign(request: HttpRequest, uuid: str) -> HttpResponse:
    portal_message = get_object_or_404(PortalMessage, uuid=uuid)
    raw = request.POST.get("assignee", "")
    assignee = get_user_model().objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    try:
        conversations.conversation_assign(
            portal_message=portal_message, assignee=assignee, actor=request.user, request=request
        )
    except (conversations.ConversationError, PermissionError) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The conversation was assigned.")
    return redirect("portal:conversation", uuid=uuid)


@require_POST
@login_required
@permission_required("luxmail.view_phi", raise_exception=True)
def mark_done(request: HttpRequest, uuid: str) -> HttpResponse:
    portal_message = get_object_or_404(PortalMessage, uuid=uuid)
    done = request.POST.get("done") == "1"
    try:
        conversations.conversation_set_done(
            portal_message=portal_message, done=done, actor=request.user, request=request
        )
    except PermissionError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Marked done." if done else "The conversation is open again.")
    return redirect("portal:conversation", uuid=uuid)


def _file_response(file: conversations.AttachmentFile) -> HttpResponse:
    response = HttpResponse(file.data, content_type=file.content_type)
    # RFC 6266 / 5987: an ASCII fallback and the UTF-8 name; always a download, never inline.
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in file.name
    )
    response["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file.name)}"
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@never_cache
@require_GET
@login_required
@permission_required("luxmail.view_phi", raise_exception=True)
def attachment_staff(request: HttpRequest, attachment: str) -> HttpResponse:
    item = get_object_or_404(
        PortalAttachment.objects.select_related("staff_reply__portal_message"), uuid=attachment
    )
    return _file_response(
        conversations.attachment_open_staff(attachment=item, actor=request.user, request=request)
    )


@views._portal_page()
@require_GET
def attachment_recipient(request: HttpRequest, token: str, attachment: str) -> HttpResponse:
    portal_message, problem = views._find(request, token)
    if problem is not None:
        return problem
    assert portal_message is not None
    session = views._session(request, portal_message)
    if session is None:
        return redirect("portal:start", token=token)
    item = PortalAttachment.objects.select_related("staff_reply").filter(uuid=attachment).first()
    if item is None:
        return views._unavailable(request, "invalid")
    try:
        file = conversations.attachment_open_recipient(
            attachment=item, portal_message=portal_message, session=session, request=request
        )
    except PortalUnavailable as failure:
        return views._unavailable(request, failure.state)
    return _file_response(file)
