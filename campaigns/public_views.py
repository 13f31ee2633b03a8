"""Public recipient pages under ``/u/`` (outside the staff MFA gate; token-authorized).

GET never changes anything (link scanners follow GETs); changes need a POST: the
RFC 8058 one-click POST from a mail client (``List-Unsubscribe=One-Click``), or the
confirmation form. CSRF does not apply — the unguessable token is the authorization
and the one-click POST comes from mail providers without cookies.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns import recipients
from campaigns.sending import tokens
from luxmail import org


def _invalid(request: HttpRequest, error: tokens.InvalidToken) -> HttpResponse:
    return render(
        request,
        "unsubscribe/invalid.html",
        {"error": str(error), "org_name": org.get_settings().name},
        status=404,
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = recipients.link_for_token(token)
    except tokens.InvalidToken as error:
        return _invalid(request, error)
    org_name = org.get_settings().name
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        if not one_click and request.POST.get("confirm") != "yes":
            return render(request, "unsubscribe/confirm.html", {"org_name": org_name, "link": link})
        changed = recipients.unsubscribe(link=link, one_click=one_click, request=request)
        if one_click:
            return HttpResponse("Unsubscribed.\n", content_type="text/plain; charset=utf-8")
        return render(
            request,
            "unsubscribe/done.html",
            {"org_name": org_name, "link": link, "changed": changed},
        )
    return render(request, "unsubscribe/confirm.html", {"org_name": org_name, "link": link})


@require_http_methods(["GET", "POST"])
@csrf_exempt
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = recipients.link_for_token(token)
    except tokens.InvalidToken as error:
        return _invalid(request, error)
    saved = False
    if request.method == "POST" and not link.is_test:
        current = recipients.preferences_update(
            link=link,
            marketing=request.POST.get("marketing") == "on",
            phi_marketing=request.POST.get("phi_marketing") == "on",
            request=request,
        )
        saved = True
    else:
        current = recipients.preferences(link)
    return render(
        request,
        "unsubscribe/preferences.html",
        {
            "org_name": org.get_settings().name,
            "link": link,
            "prefs": current,
            "saved": saved,
            "token": token,
        },
    )
