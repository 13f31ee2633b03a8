"""Hosted sign-up forms and their double opt-in (issue 18), public under ``/f/``.

* ``/f/<slug>/`` — the form (GET) and its submission (POST); framable only by the
  organization's allowed origins (``frame-ancestors``), every other page keeps
  ``frame-ancestors 'none'``;
* ``/f/<slug>/brand.css`` — the form's colours (no inline styles under the strict CSP);
* ``/f/<slug>/embed.js`` — a small script a hospital site includes to show the form in
  an iframe;
* ``/f/confirm/<token>/`` — GET shows a confirm button and changes nothing (link
  scanners follow GETs); POST confirms.

CSRF does not apply to these POSTs: an embedded form is a third-party frame, where
browsers withhold the CSRF cookie; a submission only creates a pending, rate-limited
sign-up, and the confirm POST is authorized by its unguessable token (like ``/u/``).
Oversized or malformed bodies get a friendly page, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from csp.constants import SELF
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from campaigns.sending import tokens
from campaigns.transactional import confirmations
from contacts import signup_selectors as selectors
from contacts.services import signup
from luxmail import clients, org
from portal.views import PORTAL_CSP

MAX_BODY = 64 * 1024
MAX_FIELDS = 60
MAX_VALUE = 1000
HONEYPOT = "website"

View = Callable[..., HttpResponse]


def _framable(view: View) -> View:
    """Allow framing by the configured origins only; strict CSP otherwise."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        ancestors = [SELF, *selectors.frame_ancestors()]
        response._csp_replace = {**PORTAL_CSP, "frame-ancestors": ancestors}  # type: ignore[attr-defined]
        response["Referrer-Policy"] = "same-origin"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return never_cache(xframe_options_exempt(wrapped))


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(
        request, template, {"org_name": org.get_settings().name, **context}, status=status
    )


def _problem(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return _page(request, "signup/error.html", {"message": message}, status=status)


def _read_post(request: HttpRequest) -> QueryDict | None:
    """The posted fields, or None when the body is too big, has too many fields or
    cannot be decoded (the caller shows a friendly error)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length > MAX_BODY:
        return None
    try:
        data = request.POST
    except (RequestDataTooBig, TooManyFieldsSent, UnicodeDecodeError, ValueError):
        return None
    if len(data) > MAX_FIELDS:
        return None
    return data


def _context(
    form: Any, *, values: dict[str, str], errors: dict[str, str], **extra: Any
) -> dict[str, Any]:
    fields = selectors.form_fields(form)
    for spec in fields:
        spec.value, spec.error = values.get(spec.key, ""), errors.get(spec.key, "")
    return {
        "form": form,
        "fields": fields,
        "values": values,
        "errors": errors,
        "lists": selectors.form_lists(form),
        "honeypot": HONEYPOT,
        **extra,
    }


@csrf_exempt
@_framable
@require_http_methods(["GET", "POST"])
def form_page(request: HttpRequest, slug: str) -> HttpResponse:
    form = selectors.published_form(slug)
    if form is None:
        return _problem(request, "This sign-up form is not available.", status=404)
    if request.method == "GET":
        return _page(
            request, "signup/form.html", _context(form, values={}, errors={}, checked=set())
        )
    data = _read_post(request)
    if data is None:
        return _problem(request, "The form could not be read. Please fill it in again.", 400)
    values = {key: data.get(key, "") for key in data if key != HONEYPOT}
    errors: dict[str, str] = {}
    for key, value in values.items():
        if len(value) > MAX_VALUE or "\x00" in value:
            errors[key] = f"At most {MAX_VALUE} characters of plain text."
    if data.get(HONEYPOT):
        # A bot filled the hidden field: answer as if it worked, store nothing.
        return _page(request, "signup/thanks.html", {"form": form})
    if not errors:
        try:
            list_ids = [int(v) for v in data.getlist("lists") if v.isdigit()][:50]
            signup.submission_create(
                form=form,
                data={s.key: values.get(s.key, "").strip() for s in selectors.form_fields(form)},
                marketing=data.get("marketing") == "yes",
                phi_marketing=data.get("phi_marketing") == "yes",
                authorization_accepted=data.get("authorization_read") == "yes",
                signature=values.get("signature", ""),
                list_ids=list_ids,
                ip=clients.client_ip(request.META),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
                notify=confirmations.enqueue_confirmation,
            )
        except signup.SignupInvalid as error:
            errors = error.errors
        except signup.SignupLimited as error:
            return _problem(request, error.message, status=429)
        except signup.SignupError as error:
            return _problem(request, error.message)
        else:
            return _page(request, "signup/thanks.html", {"form": form})
    return _page(
        request,
        "signup/form.html",
        _context(form, values=values, errors=errors, checked=set(data.getlist("lists"))),
        status=400,
    )


@require_GET
@_framable
def brand_css(request: HttpRequest, slug: str) -> HttpResponse:
    form = selectors.published_form(slug)
    color = form.brand_color if form is not None else "#0b5394"
    if not (
        len(color) == 7
        and color[0] == "#"
        and all(c in "0123456789abcdefABCDEF" for c in color[1:])
    ):
        color = "#0b5394"
    css = (
        f".signup-header{{background:{color};}}\n"
        f".signup button[type=submit]{{background:{color};border-color:{color};color:#fff;}}\n"
        f".signup a{{color:{color};}}\n"
    )
    return HttpResponse(css, content_type="text/css; charset=utf-8")


@require_GET
def embed_js(request: HttpRequest, slug: str) -> HttpResponse:
    form = selectors.published_form(slug)
    if form is None:
        return HttpResponse("", content_type="text/javascript; charset=utf-8", status=404)
    url = request.build_absolute_uri(f"/f/{form.slug}/")
    script = (
        "(function(){var s=document.currentScript;var f=document.createElement('iframe');"
        f"f.src={json.dumps(url)};f.title={json.dumps(form.title)};"
        "f.style.width='100%';f.style.minHeight='60rem';f.style.border='0';"
        "f.setAttribute('loading','lazy');s.parentNode.insertBefore(f,s.nextSibling);})();\n"
    )
    response = HttpResponse(script, content_type="text/javascript; charset=utf-8")
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@csrf_exempt
@_framable
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        submission_id = confirmations.read_confirm_token(token[:64])
    except tokens.InvalidToken:
        return _problem(request, "This confirmation link is not valid.", status=404)
    if request.method == "GET":
        # Never confirms: mail scanners and previews follow links.
        return _page(request, "signup/confirm.html", {"token": token})
    try:
        submission = signup.submission_confirm(
            submission_id=submission_id,
            ip=clients.client_ip(request.META),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )
    except signup.SignupError as error:
        return _problem(request, error.message, status=410)
    form = submission.form
    assert submission.contact_id is not None
    return _page(
        request,
        "signup/confirmed.html",
        {
            "form": form,
            "resubscribe": submission.kind == "resubscribe",
            "preferences_url": confirmations.preferences_path(submission.contact_id),
        },
    )
