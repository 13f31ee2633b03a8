from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_otp.admin import OTPAdminSite

from luxmail.crypto import encrypted_fields


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


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only: writes belong to audited services, not to generic admin forms."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlainFieldsAdmin(ReadOnlyAdmin):
    """Read-only, showing every column but encrypted ones (not even as ciphertext) and
    ``hidden_fields`` (blind indexes, hashes)."""

    hidden_fields: tuple[str, ...] = ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        hidden = {f.name for f in encrypted_fields(self.model)} | set(self.hidden_fields)
        return [
            f.name
            for f in self.model._meta.concrete_fields
            if f.name not in hidden and not f.primary_key
        ]
