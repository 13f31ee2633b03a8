"""Answer tracking requests before sessions, authentication, CSRF and the MFA gate.

``/t/`` has no staff user and no cookies of ours; running the rest of the stack would
only cost time (and a session save, a database write, when a staff member's browser
follows a tracking link). Placed right after ``SecurityMiddleware`` so HTTPS
redirects and security headers still apply. The same views are also routed in
``luxmail/urls.py`` for a stack without this middleware.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from reporting import public_views


class TrackingFastPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/t/"):
            response = public_views.dispatch(request)
            if response is not None:
                return response
        return self.get_response(request)
