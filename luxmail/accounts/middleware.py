"""Session policy and the MFA gate for every staff page (DESIGN.md §4).

* ``SessionPolicyMiddleware`` ends sessions idle for 15 minutes (Django's cookie age,
  refreshed on every request) and any session older than 12 hours (absolute).
* ``MFARequiredMiddleware`` sends a signed-in user whose session is not verified by a
  second factor to the MFA step (or to enrolment when the user has no device yet).
  Under the org setting "require passkey for Admins" an Admin's verified session
  must also come from a passkey: an Admin without one is sent to register one, an
  Admin with one who verified otherwise is sent back to the MFA step.
  Public surfaces (recipient portal, tracking, unsubscribe, API key requests) are
  exempt: they either have no staff user or authenticate on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from luxmail import audit
from luxmail.accounts import selectors

SESSION_STARTED_KEY = "luxmail_session_started"

# Paths that never need a verified staff session.
PUBLIC_PREFIXES = (
    "/static/",
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/locked/",
    # Single sign-on: the IdP sends the browser back here before anyone is signed in.
    "/oidc/",
    "/saml2/",
    "/portal/",
    "/f/",
    "/t/",
    "/u/",
    "/healthz",
    "/favicon.ico",
)
# Paths where a password-authenticated but unverified user completes MFA.
MFA_PREFIXES = ("/accounts/mfa/", "/webauthn/")
# The only paths open to an Admin who must register a passkey first.
PASSKEY_ENROL_PREFIXES = ("/accounts/mfa/passkey/", "/webauthn/")


class SessionPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get(SESSION_STARTED_KEY)
            now = int(time.time())
            if started is None:
                request.session[SESSION_STARTED_KEY] = now
            elif now - int(started) > settings.LUXMAIL_SESSION_ABSOLUTE_SECONDS:
                audit.record(
                    "auth.session_expired",
                    actor=user,
                    request=request,
                    details={"reason": "absolute"},
                )
                logout(request)
                return redirect(f"{reverse('accounts:login')}?{urlencode({'expired': 1})}")
        return self.get_response(request)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class MFARequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path.startswith(PUBLIC_PREFIXES) or _is_api(request):
            # The API enforces verification in VerifiedSessionAuthentication.
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)

        if user.is_verified():
            step = selectors.passkey_step(user, getattr(user, "otp_device", None))
            if step is None:
                return self.get_response(request)
            if step == selectors.REGISTER_PASSKEY:
                allowed, target = PASSKEY_ENROL_PREFIXES, "accounts:passkey_enrol"
            else:
                allowed, target = MFA_PREFIXES, "accounts:mfa_verify"
            if path.startswith(allowed):
                return self.get_response(request)
        elif path.startswith(MFA_PREFIXES):
            return self.get_response(request)
        else:
            target = (
                "accounts:mfa_verify"
                if selectors.has_confirmed_device(user)
                else "accounts:mfa_enrol"
            )
        if request.headers.get("HX-Request"):
            return JsonResponse({"detail": "Second factor required."}, status=401)
        return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
