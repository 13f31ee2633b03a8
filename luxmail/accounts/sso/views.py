"""The libraries' views behind a switch: each answers 404 while its protocol is off.

mozilla-django-oidc and djangosaml2 read their configuration when a view is built, so
an unconfigured protocol would raise (HTTP 500); these wrappers never build them then.
The ACS view also turns a refused or broken SAML response into the sign-in page's
"single sign-on failed" message instead of djangosaml2's bare error page.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt
from djangosaml2 import views as saml_views
from mozilla_django_oidc import views as oidc_views

from luxmail import conf

_FAILED = "/accounts/login/?sso=failed"


def _oidc_on() -> None:
    if not conf.oidc_enabled():
        raise Http404


def _saml_on() -> None:
    if not conf.saml_enabled():
        raise Http404


def oidc_authenticate(request: HttpRequest) -> HttpResponse:
    _oidc_on()
    return oidc_views.OIDCAuthenticationRequestView.as_view()(request)


def oidc_callback(request: HttpRequest) -> HttpResponse:
    _oidc_on()
    return oidc_views.OIDCAuthenticationCallbackView.as_view()(request)


class _AssertionConsumerServiceView(saml_views.AssertionConsumerServiceView):
    def handle_acs_failure(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return redirect(_FAILED)


def saml_login(request: HttpRequest) -> HttpResponse:
    _saml_on()
    return saml_views.LoginView.as_view()(request)


@csrf_exempt  # the IdP posts here; the signed response, not a CSRF token, is the check
def saml_acs(request: HttpRequest) -> HttpResponse:
    _saml_on()
    return _AssertionConsumerServiceView.as_view()(request)


def saml_metadata(request: HttpRequest) -> HttpResponse:
    _saml_on()
    return saml_views.MetadataView.as_view()(request)
