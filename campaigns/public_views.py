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
from campaigns.transactional import confirmations
from contacts.models import ChannelPreference, Frequency
from contacts.services import signup
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


_PAUSES = {"pause30": 30, "pause90": 90, "resume": 0}


@require_http_methods(["GET", "POST"])
@csrf_exempt
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = recipients.link_for_token(token)
    except tokens.InvalidToken as invalid:
        return _invalid(request, invalid)
    notice = ""
    error = ""
    if request.method == "POST" and not link.is_test:
        action = request.POST.get("action", "save")
        try:
            if action == "resubscribe":
                recipients.resubscribe(
                    link=link, request=request, notify=confirmations.enqueue_confirmation
                )
                notice = "We sent you an email: confirm it to receive our emails again."
            elif action in _PAUSES:
                recipients.preferences_update(
                    link=link,
                    marketing=True,
                    phi_marketing=True,
                    pause_days=_PAUSES[action],
                    request=request,
                )
                notice = "Your preferences are saved and apply immediately."
            else:
                recipients.preferences_update(
                    link=link,
                    marketing=request.POST.get("marketing") == "on",
                    phi_marketing=request.POST.get("phi_marketing") == "on",
                    topics={int(v) for v in request.POST.getlist("topics")[:100] if v.isdigit()},
                    frequency=request.POST.get("frequency", "")[:16] or None,
                    channel=request.POST.get("channel", "")[:16] or None,
                    language=request.POST.get("language", "")[:8] or None,
                    request=request,
                )
                notice = "Your preferences are saved and apply immediately."
        except signup.SignupError as problem:
            error = problem.message
    current = recipients.preferences(link)
    return render(
        request,
        "unsubscribe/preferences.html",
        {
            "org_name": org.get_settings().name,
            "link": link,
            "prefs": current,
            "saved": bool(notice),
            "notice": notice,
            "error": error,
            "token": token,
            "frequencies": Frequency.choices,
            "channels": ChannelPreference.choices,
        },
        status=400 if error else 200,
    )
