"""RFC 9457 problem details for every error the API answers.

Every ``/api/`` response with a 4xx/5xx status is ``application/problem+json``::

    {"type": "https://luxmail.invalid/problems/validation", "title": "Invalid request",
     "status": 400, "detail": "…", "instance": "/api/v1/contacts/", "errors": [...]}

Three pieces make it so:

* :func:`exception_handler` (DRF ``EXCEPTION_HANDLER``) turns DRF exceptions into a
  ``detail`` plus, for validation errors, ``errors`` = ``[{"field", "message"}]`` —
  messages that never repeat a submitted value (PHI);
* :class:`ApiProblemMiddleware` refuses oversized bodies before anything parses them
  (``413``), answers unhandled exceptions with a generic ``500`` carrying a log id (no
  traceback, no exception text), and rewrites every other error response under
  ``/api/`` — views' own ``Response({"detail": …}, status=409)``, Django's 404 page, a
  ``RequestDataTooBig`` — into problem details, keeping extension members such as
  ``errors``, ``code`` and ``problems``;
* :func:`problem` builds the document.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from luxmail.api.parsers import body_limit
from luxmail.api.throttling import AnonRateThrottle

logger = logging.getLogger("luxmail.api")

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://luxmail.invalid/problems/"
API_PREFIX = "/api/"
# Human pages under /api/ keep Django's own error pages.
_NOT_API = ("/api/docs/",)

# status → (type slug, title). The type URIs are identifiers, documented in docs/api.md.
TYPES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("not-authenticated", "Authentication required"),
    403: ("forbidden", "Permission denied"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
    500: ("server-error", "Internal server error"),
}
_VALIDATION = ("validation", "Invalid request")
_PARSE = ("malformed-body", "Malformed request body")
_STANDARD = ("type", "title", "status", "detail", "instance")
# DRF messages that quote the submitted value; replaced by a message that does not.
_ECHOING_CODES = {
    "invalid_choice": "Not one of the allowed choices.",
    "does_not_exist": "No such object.",
    "invalid_pk_value": "No such object.",
}
_DEFAULT_DETAIL = {
    404: "Nothing here.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
    500: "Something went wrong on our side.",
}


def problem(
    status: int, *, detail: str | None = None, kind: tuple[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    slug, title = kind or TYPES.get(status, ("about:blank", "Error"))
    doc: dict[str, Any] = {
        "type": slug if slug == "about:blank" else TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail or _DEFAULT_DETAIL.get(status, title + "."),
    }
    doc.update(extra)
    return doc


def problem_response(request: HttpRequest, doc: dict[str, Any], **headers: str) -> HttpResponse:
    doc.setdefault("instance", request.path)
    response = HttpResponse(json.dumps(doc), content_type=CONTENT_TYPE, status=int(doc["status"]))
    for name, value in headers.items():
        response[name] = value
    return response


# --- DRF exceptions -----------------------------------------------------------------------


def _strings(data: Any, found: list[str], limit: int = 2000) -> None:
    """Submitted string values (≥ 3 characters), to scrub from messages."""
    stack = [data]
    while stack and len(found) < limit:
        item = stack.pop()
        if isinstance(item, str):
            if len(item.strip()) >= 3:
                found.append(item.strip())
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _message(error: Any, submitted: list[str]) -> str:
    text = _ECHOING_CODES.get(getattr(error, "code", ""), str(error))
    for value in submitted:
        if value in text:
            text = text.replace(value, "(the submitted value)")
    return text


def _field_errors(detail: Any, submitted: list[str], path: str = "") -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int) or str(key).isdigit():  # a list child's index
                where = f"{path}[{key}]"
            elif key in ("non_field_errors", "detail"):  # about the whole request
                where = path
            else:
                where = f"{path}.{key}" if path else str(key)
            errors += _field_errors(value, submitted, where)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            errors += [{"field": path, "message": _message(item, submitted)} for item in detail]
        else:
            for index, item in enumerate(detail):
                errors += _field_errors(item, submitted, f"{path}[{index}]")
    else:
        errors.append({"field": path, "message": _message(detail, submitted)})
    return errors


def _request_data(request: Any) -> Any:
    # Only what was already parsed: never parse a body from the error path.
    full = getattr(request, "_full_data", None)
    return full if isinstance(full, dict | list) else None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, then the body as problem details (see the module docstring)."""
    request = context.get("request")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and request:
        # DRF authenticates before it throttles: charge refused credentials to the
        # client's anonymous budget here, so guessing keys is rate limited too.
        throttle = AnonRateThrottle()
        if not throttle.allow_request(request, context.get("view")):
            exc = exceptions.Throttled(throttle.wait())
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        response["Retry-After"] = str(max(1, math.ceil(wait)))
    instance = request.path if request is not None else None
    if isinstance(exc, exceptions.ValidationError):
        submitted: list[str] = []
        _strings(_request_data(request), submitted)
        errors = _field_errors(exc.detail, submitted)
        fields = sorted({e["field"] for e in errors if e["field"]})
        detail = (
            "Check these fields: " + ", ".join(fields) + "."
            if fields
            else (errors[0]["message"] if errors else "The request is invalid.")
        )
        response.data = problem(400, detail=detail, kind=_VALIDATION, errors=errors)
    else:
        data = response.data if isinstance(response.data, dict) else {}
        detail = str(data.get("detail") or "")
        kind = _PARSE if isinstance(exc, exceptions.ParseError) else None
        response.data = problem(response.status_code, detail=detail or None, kind=kind)
        if isinstance(exc, exceptions.Throttled):
            response.data["detail"] = (
                "Too many requests; retry after " + response["Retry-After"] + " seconds."
            )
    if instance:
        response.data["instance"] = instance
    response.content_type = CONTENT_TYPE
    return response


# --- everything else under /api/ ---------------------------------------------------------


def is_api(request: HttpRequest) -> bool:
    path = request.path_info
    return path.startswith(API_PREFIX) and not path.startswith(_NOT_API)


def _as_problem(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    status = response.status_code
    data = getattr(response, "data", None)
    if not isinstance(data, dict):
        data = {}
    extra = {
        k: v for k, v in data.items() if k not in _STANDARD and isinstance(k, str) and status < 500
    }
    detail = data.get("detail") if status < 500 else None
    doc = problem(status, detail=str(detail) if detail else None, **extra)
    new = problem_response(request, doc)
    for name, value in response.items():
        if name.lower() not in ("content-type", "content-length"):
            new[name] = value
    return new


class ApiProblemMiddleware:
    """Body limits and problem details for ``/api/`` (see the module docstring).

    Sits before CSRF and session middleware so that nothing reads an oversized body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 400 and is_api(request):
            renderer = getattr(response, "accepted_renderer", None)
            done = response.get("Content-Type", "").split(";")[0] == CONTENT_TYPE and (
                renderer is None or renderer.format == "json"
            )
            if not done:
                return _as_problem(request, response)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if not is_api(request):
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(
                request, problem(400, detail="The Content-Length header is not a number.")
            )
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        limit = body_limit(view_class)
        if length > limit:
            return problem_response(
                request,
                problem(
                    413,
                    detail=f"The request body is {length:,} bytes; this endpoint takes at "
                    f"most {limit:,}.",
                    max_bytes=limit,
                ),
            )
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return problem_response(
                request,
                problem(413, detail="The request body is larger than the server accepts."),
            )
        if isinstance(exception, TooManyFieldsSent):
            return problem_response(request, problem(400, detail="Too many form fields."))
        error_id = uuid.uuid4().hex[:12]
        # The exception's type and where it was raised, for the operator; never its text
        # in the response (it may name data), and the id lets support find this line.
        logger.error(
            "API error %s: unhandled %s on %s %s",
            error_id,
            type(exception).__name__,
            request.method,
            request.path,
            exc_info=exception,
        )
        return problem_response(
            request,
            problem(
                500,
                detail=f"Something went wrong on our side (error id {error_id}).",
                error_id=error_id,
            ),
        )
