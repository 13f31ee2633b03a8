from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_otp.admin import OTPAdminSite


class LuxMailAdminSite(OTPAdminSite):
    """Admin that refuses sessions not verified by a second factor.

    Staff sign in through the LuxMail login and MFA step; the admin's own login page
    redirects there, so there is a single place where factors are checked and audited.
    """

    site_header = "LuxMail administration"
    site_title = "LuxMail admin"
    index_title = "Administration"
    login_template = None

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.user.is_authenticated:
            # Signed in (the MFA gate has verified the session before any admin URL)
            # but not staff: sending them to the login page would redirect straight
            # back here, forever.
            raise PermissionDenied("Your role does not include the administration site.")
        next_url = request.GET.get("next") or reverse("admin:index")
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': next_url})}")
