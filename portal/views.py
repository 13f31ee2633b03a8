"""The recipients' portal pages (public, under ``/portal/<token>/``).

No staff session is involved: the link token finds the message, a one-time code opens
a portal session scoped to that message (a cookie whose path is the message's own),
and every page is sent with a strict CSP (nothing loads from anywhere but LuxMail),
``Cache-Control: no-store`` and ``Referrer-Policy: same-origin``, so the token in the
path never leaves in a Referer header to another site (``no-referrer`` would also make
browsers send ``Origin: null`` with the forms, which CSRF protection rightly refuses).
Views parse input, call one service and render.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from csp.constants import NONE, SELF
from csp.decorators import csp_replace
from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal import selectors, services
from portal.models import PortalMessage, PortalSession

COOKIE = "lm_portal"

PORTAL_CSP: dict[str, list[str]] = {
    "default-src": [NONE],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF, "data:"],
    "font-src": [SELF],
    "connect-src": [NONE],
    "media-src": [NONE],
    "frame-src": [NONE],
    "object-src": [NONE],
    "base-uri": [NONE],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}
# The read page shows the message's own presentation: style attributes that survived
# the sanitizer's property allow-list (portal/sanitize.py), nothing else.
READ_CSP: dict[str, list[str]] = {**PORTAL_CSP, "style-src-attr": ["'unsafe-inline'"]}

View = Callable[..., Any]


def _portal_page(csp: dict[str, list[str]] = PORTAL_CSP) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response["Referrer-Policy"] = "same-origin"
            response["X-Robots-Tag"] = "noindex, nofollow"
            return response

        return never_cache(csp_replace(csp)(wrapped))

    return decorate


class VerifyForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*\d{3}\s?\d{3}\s*$",
        label="6-digit code",
        error_messages={"invalid": "Enter the 6 digits from the e-mail."},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": 7}
        ),
    )
    birth_date = forms.DateField(
        label="Your date of birth",
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}),
    )

    def __init__(self, *args: Any, ask_birth_date: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if ask_birth_date:
            self.fields["birth_date"].required = True
        else:
            del self.fields["birth_date"]


class ReplyForm(forms.Form):
    body = forms.CharField(
        label="Your reply",
        max_length=services.MAX_REPLY_CHARS,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


def _context(portal_message: PortalMessage, token: str, **extra: Any) -> dict[str, Any]:
    sender = portal_message.sender
    return {
        "token": token,
        "sender_name": sender.from_name if sender is not None else "",
        "expires_at": portal_message.expires_at,
        **extra,
    }


def _unavailable(request: HttpRequest, state: str) -> HttpResponse:
    status = {"invalid": 404, "locked": 403}.get(state, 410)
    return render(request, "portal/unavailable.html", {"state": state}, status=status)


def _find(request: HttpRequest, token: str) -> tuple[PortalMessage | None, HttpResponse | None]:
    portal_message = selectors.portal_message_by_token(token)
    if portal_message is None:
        return None, _unavailable(request, "invalid")
    state = selectors.portal_message_state(portal_message)
    if state != "active":
        return None, _unavailable(request, state)
    return portal_message, None


def _session(request: HttpRequest, portal_message: PortalMessage) -> PortalSession | None:
    return services.portal_session_resolve(
        portal_message=portal_message, session_key=request.COOKIES.get(COOKIE), request=request
    )


def _set_cookie(response: HttpResponse, token: str, key: str) -> None:

    response.set_cookie(
        COOKIE,
        key,
        max_age=services.idle_seconds(),
        path=f"/portal/{token}/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )


def _forget_cookie(response: HttpResponse, token: str) -> None:
    response.delete_cookie(COOKIE, path=f"/portal/{token}/", samesite="Strict")


@_portal_page()
@require_http_methods(["GET"])
def start(request: HttpRequest, token: str) -> HttpResponse:
    """The notice's link: explains the check and offers to e-mail a code."""
    portal_message, problem = _find(request, token)
    if problem is not None:
        return problem
    assert portal_message is not None
    if _session(request, portal_message) is not None:
        return redirect("portal:read", token=token)
    ended = COOKIE in request.COOKIES
    response = render(
        request, "portal/start.html", _context(portal_message, token, session_ended=ended)
    )
    if ended:
        _forget_cookie(response, token)
    return response


@_portal_page()
@require_POST
def send_code(request: HttpRequest, token: str) -> HttpResponse:
    portal_message, problem = _find(request, token)
    if problem is not None:
        return problem
    assert portal_message is not None
    try:
        services.portal_code_send(portal_message=portal_message, request=request)
    except services.PortalUnavailable as error:
        return _unavailable(request, error.state)
    except services.PortalRateLimited as error:
        return render(
            request,
            "portal/verify.html",
            _context(
                portal_message,
                token,
                form=VerifyForm(ask_birth_date=services.birth_date_required(portal_message)),
                error=str(error),
            ),
            status=429,
        )
    except services.PortalDeliveryFailed as error:
        return render(
            request,
            "portal/start.html",
            _context(portal_message, token, error=str(error)),
            status=503,
        )
    return redirect(f"/portal/{token}/verify/?sent=1")


@_portal_page()
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest, token: str) -> HttpResponse:
    portal_message, problem = _find(request, token)
    if problem is not None:
        return problem
    assert portal_message is not None
    ask = services.birth_date_required(portal_message)
    form = VerifyForm(request.POST or None, ask_birth_date=ask)
    error = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                verified = services.portal_verify(
                    portal_message=portal_message,
                    code=form.cleaned_data["code"],
                    birth_date=form.cleaned_data.get("birth_date"),
                    request=request,
                )
            except services.PortalUnavailable as failure:
                return _unavailable(request, failure.state)
            except (services.PortalNoCode, services.PortalVerifyFailed) as failure:
                error, status = str(failure), 400
            else:
                response = redirect("portal:read", token=token)
                _set_cookie(response, token, verified.session_key)
                return response
        else:
            status = 400
    context = _context(
        portal_message, token, form=form, error=error, sent=request.GET.get("sent") == "1"
    )
    return render(request, "portal/verify.html", context, status=status)


@_portal_page(READ_CSP)
@require_http_methods(["GET"])
def read(request: HttpRequest, token: str) -> HttpResponse:
    portal_message, problem = _find(request, token)
    if problem is not None:
        return problem
    assert portal_message is not None
    session = _session(request, portal_message)
    if session is None:
        return redirect("portal:start", token=token)
    return _read_page(request, portal_message, session, token, ReplyForm())


def _read_page(
    request: HttpRequest,
    portal_message: PortalMessage,
    session: PortalSession,
    token: str,
    form: ReplyForm,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    try:
        content = services.portal_message_open(
            portal_message=portal_message, session=session, request=request
        )
    except services.PortalUnavailable as failure:
        return _unavailable(request, failure.state)
    response = render(
        request,
        "portal/read.html",
        _context(
            portal_message,
            token,
            content=content,
            form=form,
            error=error,
            replied=request.GET.get("replied") == "1",
            idle_minutes=services.idle_seconds() // 60,
        ),
        status=status,
    )
    _set_cookie(response, token, request.COOKIES[COOKIE])  # the idle clock restarts
    return response


@_portal_page(READ_CSP)
@require_POST
def reply(request: HttpRequest, token: str) -> HttpResponse:
    portal_message, problem = _find(request, token)
    if problem is not None:
        return problem
    assert portal_message is not None
    session = _session(request, portal_message)
    if session is None:
        return redirect("portal:start", token=token)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _read_page(request, portal_message, session, token, form, status=400)
    try:
        services.portal_reply_create(
            portal_message=portal_message,
            session=session,
            body=form.cleaned_data["body"],
            request=request,
        )
    except services.PortalUnavailable as failure:
        return _unavailable(request, failure.state)
    except services.PortalReplyInvalid as failure:
        return _read_page(
            request, portal_message, session, token, form, error=str(failure), status=400
        )
    return redirect(f"/portal/{token}/read/?replied=1")


@_portal_page()
@require_POST
def sign_out(request: HttpRequest, token: str) -> HttpResponse:
    portal_message = selectors.portal_message_by_token(token)
    if portal_message is not None:
        session = _session(request, portal_message)
        if session is not None:
            services.portal_session_end(session=session, request=request)
    response = render(request, "portal/signed_out.html", {"token": token})
    _forget_cookie(response, token)
    return response
