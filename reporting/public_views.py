"""``/t/``: the open pixel and the click redirect (public, token-authorized, no session).

The request path does the minimum: check the token's signature, append the raw facts
to the durable buffer (``reporting.buffer``) and answer. Classification, storage,
rollups and webhooks happen in the ingester (``reporting.ingest``), so a slow or
unavailable database never slows a recipient down or loses an event.

Answers never tell a forged token from a real one: an open always gets the pixel; a
click with a bad token, for a link that is not in the message, or on the honeypot gets
the same "link not available" page. Nothing is buffered for a bad token. ``HEAD`` is
answered like ``GET`` without a body and recorded (the classifier labels it
automated: a person's click is always a ``GET``).
"""

from __future__ import annotations

import base64
import time
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.loader import render_to_string

from luxmail import clients
from reporting import buffer, tokens, tracking

# The smallest transparent GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_METHODS = ("GET", "HEAD")
_NO_STORE = "no-store, no-cache, must-revalidate, private, max-age=0"
_PAGE_CSP = (
    "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def _headers(meta: dict[str, Any]) -> dict[str, str]:
    found = {}
    for key, name in (
        ("purpose", "HTTP_PURPOSE"),
        ("sec_purpose", "HTTP_SEC_PURPOSE"),
        ("x_moz", "HTTP_X_MOZ"),
        ("x_purpose", "HTTP_X_PURPOSE"),
    ):
        value = meta.get(name)
        if value:
            found[key] = value[:100]
    return found


def _record(request: HttpRequest, kind: str, token: tokens.TrackingToken) -> None:
    meta = request.META
    entry: dict[str, Any] = {
        "k": kind,
        "m": token.message_id,
        "c": token.campaign_id,
        "t": round(time.time(), 6),
        "ip": clients.client_ip(meta),
        "ua": meta.get("HTTP_USER_AGENT", "")[:512],
        "mt": request.method,
    }
    if token.link_index is not None:
        entry["l"] = token.link_index
    headers = _headers(meta)
    if headers:
        entry["h"] = headers
    buffer.append(entry)


def _pixel(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(b"" if request.method == "HEAD" else PIXEL, content_type="image/gif")
    response["Content-Length"] = str(len(PIXEL))
    response["Cache-Control"] = _NO_STORE
    response["Expires"] = "0"
    return response


@cache
def _unavailable_page() -> bytes:
    return render_to_string("reporting/link_unavailable.html").encode()


def _unavailable(request: HttpRequest, status: int = 404) -> HttpResponse:
    body = _unavailable_page()
    response = HttpResponse(
        b"" if request.method == "HEAD" else body,
        status=status,
        content_type="text/html; charset=utf-8",
    )
    response["Cache-Control"] = _NO_STORE
    response["Content-Security-Policy"] = _PAGE_CSP
    response["X-Frame-Options"] = "DENY"
    response["Referrer-Policy"] = "no-referrer"
    return response


def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in _METHODS:
        return HttpResponseNotAllowed(_METHODS)
    try:
        parsed = tokens.read(tokens.OPEN, token)
    except tokens.InvalidToken:
        return _pixel(request)
    _record(request, "o", parsed)
    return _pixel(request)


def click(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in _METHODS:
        return HttpResponseNotAllowed(_METHODS)
    try:
        parsed = tokens.read(tokens.CLICK, token)
    except tokens.InvalidToken:
        return _unavailable(request)
    plan = tracking.plan_for_click(parsed.campaign_id)
    if plan is None:
        # Neither Redis nor the database can tell where the link goes right now. The
        # click is still recorded; the recipient is asked to try again.
        _record(request, "c", parsed)
        return _unavailable(request, status=503)
    assert parsed.link_index is not None
    target = plan.urls.get(parsed.link_index)
    if target is None:
        return _unavailable(request)
    _record(request, "c", parsed)
    if parsed.link_index == 0:  # the honeypot: nobody should be here
        return _unavailable(request)
    response = HttpResponse(status=302)
    response["Location"] = target
    response["Cache-Control"] = _NO_STORE
    # The target site must not learn the tracking URL (it carries the token).
    response["Referrer-Policy"] = "no-referrer"
    return response


def dispatch(request: HttpRequest) -> HttpResponse | None:
    """Answer ``/t/o/<token>`` and ``/t/c/<token>``; None for anything else."""
    path = request.path_info
    if len(path) < 6 or path[4] != "/":
        return None
    kind, token = path[3], path[5:]
    if "/" in token:
        return None
    if kind == "o":
        return open_pixel(request, token)
    if kind == "c":
        return click(request, token)
    return None
